-- title: First use of each key
-- question: Which keys were used for the first time in the period, by whom and from where — and which were used with no creation on record?
-- flag: created_at IS NULL
-- flag_rule: a key used with no creation seen in the lake (created before the archive, or elsewhere)
WITH before AS (
    SELECT b.tenant_id, b.ouid, b.time, c.category
    FROM events_before_period b
    JOIN action_catalog c ON c.vendor = b.vendor AND c.action = b.action
    WHERE b.outcome = 'success' AND b.ouid IS NOT NULL
),
used_before AS (SELECT DISTINCT tenant_id, ouid FROM before WHERE category = 'key_use'),
created_before AS (SELECT tenant_id, ouid, min(time) AS created_at FROM before WHERE category = 'key_create' GROUP BY tenant_id, ouid)
SELECT f.tenant_id, f.ouid, f.first_use, f.action, f.actor_id, f.client_ip, f.role,
       coalesce(cb.created_at, f.created_at) AS created_at, f.uses
FROM key_first_use f
LEFT JOIN used_before u ON u.tenant_id = f.tenant_id AND u.ouid = f.ouid
LEFT JOIN created_before cb ON cb.tenant_id = f.tenant_id AND cb.ouid = f.ouid
WHERE u.ouid IS NULL
ORDER BY f.first_use, f.tenant_id, f.ouid
