-- kind: new_replication_target
-- report: privileged
-- rule: a partition receiving a clone or replica (an *_AS_TARGET* event) that was no target in the look-back window (medium when the tenant never saw the partition at all; low when it is one of its own)
WITH cat AS (SELECT vendor, action FROM action_catalog WHERE category = 'replication'),
t AS (
    SELECT e.tenant_id, e.time, e.actor_id, e.client_ip, e.ouid, e.action,
           coalesce(e.part_id, '?') AS part_id, coalesce(e.hsm_id, '?') AS hsm_id
    FROM events e JOIN cat c ON c.vendor = e.vendor AND c.action = e.action
    WHERE strpos(e.action, 'AS_TARGET') > 0
),
known_targets AS (
    SELECT DISTINCT b.tenant_id, coalesce(b.part_id, '?') AS part_id, coalesce(b.hsm_id, '?') AS hsm_id
    FROM events_baseline b JOIN cat c ON c.vendor = b.vendor AND c.action = b.action
    WHERE strpos(b.action, 'AS_TARGET') > 0
),
known_parts AS (
    SELECT DISTINCT tenant_id, coalesce(part_id, '?') AS part_id, coalesce(hsm_id, '?') AS hsm_id FROM events_baseline
)
SELECT t.tenant_id, min(t.time) AS time, min(t.actor_id) AS actor_id, min(t.client_ip) AS client_ip,
       min(t.ouid) AS ouid, t.part_id, t.hsm_id, count(*) AS events,
       array_to_string(array_sort(array_agg(DISTINCT t.action)), ', ') AS actions,
       max(CASE WHEN kp.part_id IS NULL THEN 0 ELSE 1 END) = 1 AS partition_known
FROM t
LEFT JOIN known_targets kt ON kt.tenant_id = t.tenant_id AND kt.part_id = t.part_id AND kt.hsm_id = t.hsm_id
LEFT JOIN known_parts kp ON kp.tenant_id = t.tenant_id AND kp.part_id = t.part_id AND kp.hsm_id = t.hsm_id
WHERE kt.part_id IS NULL
GROUP BY t.tenant_id, t.part_id, t.hsm_id
ORDER BY t.tenant_id, time
