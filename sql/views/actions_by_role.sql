-- actions_by_role: what does each role (PO, CO, CU, SO, public) do, and how often does it succeed?
CREATE VIEW actions_by_role AS
SELECT {tenant:tenant_id} AS tenant_id, role, action, outcome, count(*) AS events
FROM events
WHERE {tenant_rows:tenant_id}
GROUP BY {tenant:tenant_id}, role, action, outcome;
