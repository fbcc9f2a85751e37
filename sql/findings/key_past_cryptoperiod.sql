-- kind: key_past_cryptoperiod
-- report: key_lifecycle
-- rule: a key used in the period after its cryptoperiod ran out: {cryptoperiod_days} days from its creation (its first event where the lake holds none), unless the rules' [[cryptoperiods]] set another for its tenant or name (NIST SP 800-57 originator-usage period; PCI DSS 3.7) (medium)
-- rule_cryptoperiods holds the rules' entries in order and a catch-all last; the first that matches a key is its cryptoperiod.
WITH cat AS (SELECT vendor, action, category FROM action_catalog),
born AS (
    SELECT k.tenant_id, k.ouid,
           coalesce(min(k.time) FILTER (WHERE c.category = 'key_create'), min(k.time)) AS born,
           min(k.time) FILTER (WHERE c.category = 'key_create') IS NOT NULL AS created_in_lake
    FROM (SELECT tenant_id, ouid, time, vendor, action FROM key_events_before_period
          UNION ALL
          SELECT tenant_id, ouid, time, vendor, action FROM events
          WHERE outcome = 'success' AND ouid IS NOT NULL) k
    LEFT JOIN cat c ON c.vendor = k.vendor AND c.action = k.action
    GROUP BY k.tenant_id, k.ouid
),
first_match AS (
    SELECT b.tenant_id, b.ouid, min(p.priority) AS priority
    FROM born b
    JOIN rule_cryptoperiods p
      ON (p.tenant_id IS NULL OR p.tenant_id = b.tenant_id) AND b.ouid LIKE p.pattern
    GROUP BY b.tenant_id, b.ouid
),
due AS (
    SELECT b.tenant_id, b.ouid, b.born, b.created_in_lake, p.days, p.reason AS cited,
           arrow_cast(b.born, 'Int64') + p.days * 86400000000 AS expires_us
    FROM born b
    JOIN first_match m ON m.tenant_id = b.tenant_id AND m.ouid = b.ouid
    JOIN rule_cryptoperiods p ON p.priority = m.priority
),
late AS (
    SELECT e.tenant_id, e.ouid, e.time, e.actor_id, e.client_ip
    FROM events e
    JOIN cat c ON c.vendor = e.vendor AND c.action = e.action
    JOIN due d ON d.tenant_id = e.tenant_id AND d.ouid = e.ouid
    WHERE c.category = 'key_use' AND e.outcome = 'success'
      AND arrow_cast(e.time, 'Int64') > d.expires_us
)
SELECT l.tenant_id, min(l.time) AS time, max(l.time) AS last_use, l.ouid,
       min(l.actor_id) AS actor_id, min(l.client_ip) AS client_ip, count(*) AS uses,
       d.born, d.created_in_lake, d.days, d.cited,
       arrow_cast(d.expires_us, 'Timestamp(Microsecond, Some("UTC"))') AS expired_on,
       CAST((arrow_cast(max(l.time), 'Int64') - arrow_cast(d.born, 'Int64')) / 86400000000 AS BIGINT) AS age_days
FROM late l
JOIN due d ON d.tenant_id = l.tenant_id AND d.ouid = l.ouid
GROUP BY l.tenant_id, l.ouid, d.born, d.created_in_lake, d.days, d.cited, d.expires_us
ORDER BY l.tenant_id, time
