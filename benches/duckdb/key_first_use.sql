-- key_first_use for DuckDB in benches/compare.py: the same rows as sql/views/key_first_use.sql,
-- in the one-aggregation form DuckDB runs fastest (its ordered first() has no per-group cost per
-- batch): 3.2 s against 3.9 s for the min()-and-join form on the 10M-event year, so each engine
-- runs its own fastest form of the view.
CREATE VIEW key_first_use AS
WITH uses AS (
    SELECT tenant_id,
           ouid,
           first_value(time      ORDER BY time, trace_id) AS first_use,
           first_value(action    ORDER BY time, trace_id) AS action,
           first_value(actor_id  ORDER BY time, trace_id) AS actor_id,
           first_value(client_ip ORDER BY time, trace_id) AS client_ip,
           first_value(role      ORDER BY time, trace_id) AS role,
           count(*)                                       AS uses
    FROM events_categorized
    WHERE category = 'key_use' AND outcome = 'success' AND ouid IS NOT NULL
    GROUP BY tenant_id, ouid
),
created AS (
    SELECT tenant_id, ouid, min(time) AS created_at
    FROM events_categorized
    WHERE category = 'key_create' AND outcome = 'success' AND ouid IS NOT NULL
    GROUP BY tenant_id, ouid
)
SELECT u.tenant_id, u.ouid, u.first_use, u.action, u.actor_id, u.client_ip, u.role, c.created_at, u.uses
FROM uses u
LEFT JOIN created c ON c.tenant_id = u.tenant_id AND c.ouid = u.ouid;
