-- title: Privileged and destructive operations
-- question: Who destroyed keys, changed PINs, initialized or zeroized partitions, cloned or replicated objects — when and from where?
-- flag: true
-- flag_rule: every privileged or destructive operation
SELECT time, tenant_id, category, action, outcome, actor_id, client_ip, role, ouid
FROM privileged_actions
ORDER BY time, tenant_id, trace_id
