-- kind: mass_key_destruction
-- report: key_lifecycle
-- rule: {mass_destroy_count} or more keys destroyed in one tenant within {mass_destroy_window_minutes} minutes, judged against the tenant's busiest such window of the look-back (high above {routine_factor} times it; medium without enough history or up to that; low when no more than it)
-- One row per destroy that opens a full window; overlapping windows are merged into one episode afterwards.
WITH cat AS (SELECT vendor, action FROM action_catalog WHERE category = 'key_destroy'),
d AS (
    SELECT e.tenant_id, e.actor_id, e.client_ip, e.ouid, e.time
    FROM events e JOIN cat c ON c.vendor = e.vendor AND c.action = e.action
    WHERE e.outcome = 'success'
),
-- The tenant's busiest window of destroys in the look-back.
bw AS (
    SELECT b.tenant_id,
           count(*) OVER (PARTITION BY b.tenant_id ORDER BY b.time
                          RANGE BETWEEN CURRENT ROW AND INTERVAL '{mass_destroy_window_minutes} minutes' FOLLOWING) AS n
    FROM events_baseline b JOIN cat c ON c.vendor = b.vendor AND c.action = b.action
    WHERE b.outcome = 'success'
),
peak AS (SELECT tenant_id, max(n) AS baseline_peak FROM bw GROUP BY tenant_id)
SELECT w.*, coalesce(p.baseline_peak, 0) AS baseline_peak, coalesce(th.history_days, 0) AS history_days
FROM (
SELECT tenant_id, time, actor_id, client_ip, ouid,
       count(*) OVER (PARTITION BY tenant_id ORDER BY time
                      RANGE BETWEEN CURRENT ROW AND INTERVAL '{mass_destroy_window_minutes} minutes' FOLLOWING) AS destroys,
       max(time) OVER (PARTITION BY tenant_id ORDER BY time
                       RANGE BETWEEN CURRENT ROW AND INTERVAL '{mass_destroy_window_minutes} minutes' FOLLOWING) AS last_destroy
FROM d
) w
LEFT JOIN peak p ON p.tenant_id = w.tenant_id
LEFT JOIN tenant_history th ON th.tenant_id = w.tenant_id
WHERE w.destroys >= {mass_destroy_count}
ORDER BY w.tenant_id, w.time
