-- key_inventory: every key of every vendor up to the end of the period: created, first and last use, uses and failed uses, actors and addresses, destroyed, uses after destruction, age.
-- created_at is null where the lake holds no creation; age_days runs from the creation (else the first event) to the last event.
-- uses_after_destroy counts successful uses after the first successful destroy: it should be 0.
CREATE VIEW key_inventory AS
WITH k AS (
    SELECT e.tenant_id, e.ouid, e.vendor, e.time, e.outcome, e.actor_id, e.client_ip,
           COALESCE(c.category, 'other') AS category
    FROM events_to_date e
    LEFT JOIN action_catalog c ON c.vendor = e.vendor AND c.action = e.action
    WHERE e.ouid IS NOT NULL
),
destroyed AS (
    SELECT tenant_id, ouid, min(time) AS destroyed_at
    FROM k
    WHERE category = 'key_destroy' AND outcome = 'success'
    GROUP BY tenant_id, ouid
),
keys AS (
    SELECT k.tenant_id,
           k.ouid,
           min(k.vendor)                                                                  AS vendor,
           min(k.time) FILTER (WHERE k.category = 'key_create' AND k.outcome = 'success') AS created_at,
           min(k.time) FILTER (WHERE k.category = 'key_use' AND k.outcome = 'success')    AS first_use,
           max(k.time) FILTER (WHERE k.category = 'key_use' AND k.outcome = 'success')    AS last_use,
           count(*) FILTER (WHERE k.category = 'key_use' AND k.outcome = 'success')       AS uses,
           count(*) FILTER (WHERE k.category = 'key_use' AND k.outcome = 'failure')       AS failed_uses,
           count(DISTINCT k.actor_id)                                                     AS actors,
           count(DISTINCT k.client_ip)                                                    AS client_ips,
           d.destroyed_at,
           count(*) FILTER (WHERE k.category = 'key_use' AND k.outcome = 'success'
                              AND k.time > d.destroyed_at)                                AS uses_after_destroy,
           min(k.time)                                                                    AS first_seen,
           max(k.time)                                                                    AS last_seen
    FROM k
    LEFT JOIN destroyed d ON d.tenant_id = k.tenant_id AND d.ouid = k.ouid
    GROUP BY k.tenant_id, k.ouid, d.destroyed_at
)
SELECT *,
       CAST((arrow_cast(last_seen, 'Int64') - arrow_cast(COALESCE(created_at, first_seen), 'Int64'))
            / 86400000000 AS BIGINT) AS age_days
FROM keys;
