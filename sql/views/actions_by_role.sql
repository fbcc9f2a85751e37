-- actions_by_role: what does each role (PO, CO, CU, SO, public) do, and how often does it succeed?
CREATE VIEW actions_by_role AS
SELECT tenant_id, role, action, outcome, count(*) AS events
FROM events
GROUP BY tenant_id, role, action, outcome;
