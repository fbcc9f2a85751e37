-- key_first_use: when was each key first used, by whom, from where — and when was it created?
-- A use is a successful key_use event naming the key (ouid); ties on time go to the smallest trace_id.
CREATE VIEW key_first_use AS
WITH uses AS (
    SELECT tenant_id, ouid, time, action, actor_id, client_ip, role,
           row_number() OVER (PARTITION BY tenant_id, ouid ORDER BY time, trace_id) AS n,
           count(*) OVER (PARTITION BY tenant_id, ouid) AS uses
    FROM events_categorized
    WHERE category = 'key_use' AND outcome = 'success' AND ouid IS NOT NULL
),
created AS (
    SELECT tenant_id, ouid, min(time) AS created_at
    FROM events_categorized
    WHERE category = 'key_create' AND outcome = 'success' AND ouid IS NOT NULL
    GROUP BY tenant_id, ouid
)
SELECT u.tenant_id, u.ouid, u.time AS first_use, u.action, u.actor_id, u.client_ip, u.role, c.created_at, u.uses
FROM uses u
LEFT JOIN created c ON c.tenant_id = u.tenant_id AND c.ouid = u.ouid
WHERE u.n = 1;
