-- actions_by_role: what does each role (PO, CO, CU, SO, public) do, and how often does it succeed?
-- The tenant is marked where it goes: a session of a few tenants runs the view once per tenant
-- (src/query/per_tenant.rs): 0.29 against 0.32 s, same rows.
CREATE VIEW actions_by_role AS
SELECT {tenant:tenant_id} AS tenant_id, role, action, outcome, count(*) AS events
FROM events
WHERE {tenant_rows:tenant_id}
GROUP BY {tenant:tenant_id}, role, action, outcome;
