-- kind: new_actor
-- report: new_client_ips
-- rule: an actor working successfully in the period that the tenant never saw in the look-back window (medium)
WITH known AS (SELECT DISTINCT tenant_id, actor_id FROM events_baseline)
SELECT e.tenant_id, min(e.time) AS time, e.actor_id,
       array_to_string(array_sort(array_agg(DISTINCT e.client_ip)), ', ') AS client_ip,
       CAST(NULL AS VARCHAR) AS ouid, count(*) AS events,
       array_to_string(array_sort(array_agg(DISTINCT e.role)), ', ') AS roles,
       coalesce(max(th.history_days), 0) AS history_days
FROM events e
LEFT JOIN known k ON k.tenant_id = e.tenant_id AND k.actor_id = e.actor_id
LEFT JOIN tenant_history th ON th.tenant_id = e.tenant_id
WHERE e.outcome = 'success' AND e.actor_id IS NOT NULL AND k.actor_id IS NULL
GROUP BY e.tenant_id, e.actor_id
ORDER BY e.tenant_id, time
