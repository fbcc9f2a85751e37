-- kind: partition_admin
-- report: privileged
-- rule: every partition zeroize or init (high; medium when it failed)
SELECT e.tenant_id, e.time, e.actor_id, e.client_ip, e.ouid, e.action, e.outcome, e.status,
       e.part_id, e.hsm_id, e.role
FROM events e JOIN action_catalog c ON c.vendor = e.vendor AND c.action = e.action
WHERE c.category = 'partition_admin'
ORDER BY e.tenant_id, e.time
