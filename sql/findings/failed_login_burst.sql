-- kind: failed_login_burst
-- report: brute_force
-- rule: {burst_failures} or more failed logins from one client IP within {burst_window_minutes} minutes (medium; high when that IP then logs in)
-- One row per failure that opens a full window; overlapping windows are merged into one burst afterwards.
WITH f AS (
    SELECT e.tenant_id, e.client_ip, e.actor_id, e.time
    FROM events e JOIN action_catalog c ON c.vendor = e.vendor AND c.action = e.action
    WHERE c.category = 'auth' AND e.outcome = 'failure'
),
ok AS (
    SELECT e.tenant_id, e.client_ip, e.time
    FROM events e JOIN action_catalog c ON c.vendor = e.vendor AND c.action = e.action
    WHERE c.category = 'auth' AND e.outcome = 'success'
),
w AS (
    SELECT tenant_id, client_ip, actor_id, time,
           count(*) OVER (PARTITION BY tenant_id, client_ip ORDER BY time
                          RANGE BETWEEN CURRENT ROW AND INTERVAL '{burst_window_minutes} minutes' FOLLOWING) AS failures,
           max(time) OVER (PARTITION BY tenant_id, client_ip ORDER BY time
                           RANGE BETWEEN CURRENT ROW AND INTERVAL '{burst_window_minutes} minutes' FOLLOWING) AS last_failure
    FROM f
)
SELECT w.tenant_id, w.time, w.actor_id, w.client_ip, CAST(NULL AS VARCHAR) AS ouid,
       w.failures, w.last_failure, min(ok.time) AS success_after
FROM w
LEFT JOIN ok ON ok.tenant_id = w.tenant_id AND ok.client_ip = w.client_ip
            AND ok.time > w.time AND ok.time <= w.last_failure + INTERVAL '1 hour'
WHERE w.failures >= {burst_failures}
GROUP BY w.tenant_id, w.time, w.actor_id, w.client_ip, w.failures, w.last_failure
ORDER BY w.tenant_id, w.client_ip, w.time
