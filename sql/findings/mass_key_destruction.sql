-- kind: mass_key_destruction
-- report: key_lifecycle
-- rule: {mass_destroy_count} or more keys destroyed in one tenant within {mass_destroy_window_minutes} minutes (high)
-- One row per destroy that opens a full window; overlapping windows are merged into one episode afterwards.
WITH d AS (
    SELECT e.tenant_id, e.actor_id, e.client_ip, e.ouid, e.time
    FROM events e JOIN action_catalog c ON c.vendor = e.vendor AND c.action = e.action
    WHERE c.category = 'key_destroy' AND e.outcome = 'success'
)
SELECT * FROM (
SELECT tenant_id, time, actor_id, client_ip, ouid,
       count(*) OVER (PARTITION BY tenant_id ORDER BY time
                      RANGE BETWEEN CURRENT ROW AND INTERVAL '{mass_destroy_window_minutes} minutes' FOLLOWING) AS destroys,
       max(time) OVER (PARTITION BY tenant_id ORDER BY time
                       RANGE BETWEEN CURRENT ROW AND INTERVAL '{mass_destroy_window_minutes} minutes' FOLLOWING) AS last_destroy
FROM d
) w
WHERE destroys >= {mass_destroy_count}
ORDER BY tenant_id, time
