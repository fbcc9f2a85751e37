-- key_lifecycle: for each key, when was it created, first and last used, how often (and how often refused), destroyed?
CREATE VIEW key_lifecycle AS
SELECT tenant_id,
       ouid,
       min(time) FILTER (WHERE category = 'key_create' AND outcome = 'success')  AS created_at,
       min(time) FILTER (WHERE category = 'key_use' AND outcome = 'success')     AS first_use,
       max(time) FILTER (WHERE category = 'key_use' AND outcome = 'success')     AS last_use,
       count(*)  FILTER (WHERE category = 'key_use' AND outcome = 'success')     AS uses,
       count(*)  FILTER (WHERE category = 'key_use' AND outcome = 'failure')     AS failed_uses,
       min(time) FILTER (WHERE category = 'key_destroy' AND outcome = 'success') AS destroyed_at
FROM events_categorized
WHERE ouid IS NOT NULL AND category IN ('key_create', 'key_use', 'key_destroy')
GROUP BY tenant_id, ouid;
