-- kind: failed_login_burst
-- report: brute_force
-- rule: {burst_failures} or more failed logins from one client IP (for a log without addresses, such as CloudHSM's: by one user) within {burst_window_minutes} minutes, judged against the tenant's worst such window of the look-back (medium; low when no more than that window held; high when that source then logs in)
-- One row per failure that opens a full window; overlapping windows are merged into one burst afterwards.
-- src: where the failures come from, the client IP, else '@' and the actor.
WITH f AS (
    SELECT e.tenant_id, e.client_ip, coalesce(e.client_ip, '@' || e.actor_id) AS src, e.actor_id, e.time
    FROM events e JOIN action_catalog c ON c.vendor = e.vendor AND c.action = e.action
    WHERE c.category = 'auth' AND e.outcome = 'failure'
),
ok AS (
    SELECT e.tenant_id, coalesce(e.client_ip, '@' || e.actor_id) AS src, e.time
    FROM events e JOIN action_catalog c ON c.vendor = e.vendor AND c.action = e.action
    WHERE c.category = 'auth' AND e.outcome = 'success'
),
bf AS (
    SELECT b.tenant_id,
           count(*) OVER (PARTITION BY b.tenant_id, coalesce(b.client_ip, '@' || b.actor_id) ORDER BY b.time
                          RANGE BETWEEN CURRENT ROW AND INTERVAL '{burst_window_minutes} minutes' FOLLOWING) AS n
    FROM events_baseline b JOIN action_catalog c ON c.vendor = b.vendor AND c.action = b.action
    WHERE c.category = 'auth' AND b.outcome = 'failure'
),
peak AS (SELECT tenant_id, max(n) AS baseline_peak FROM bf GROUP BY tenant_id),
w AS (
    SELECT tenant_id, client_ip, src, actor_id, time,
           count(*) OVER (PARTITION BY tenant_id, src ORDER BY time
                          RANGE BETWEEN CURRENT ROW AND INTERVAL '{burst_window_minutes} minutes' FOLLOWING) AS failures,
           max(time) OVER (PARTITION BY tenant_id, src ORDER BY time
                           RANGE BETWEEN CURRENT ROW AND INTERVAL '{burst_window_minutes} minutes' FOLLOWING) AS last_failure
    FROM f
)
SELECT w.tenant_id, w.time, w.actor_id, w.client_ip, w.src, CAST(NULL AS VARCHAR) AS ouid,
       w.failures, w.last_failure, min(ok.time) AS success_after,
       coalesce(min(p.baseline_peak), 0) AS baseline_peak, coalesce(min(th.history_days), 0) AS history_days
FROM w
LEFT JOIN peak p ON p.tenant_id = w.tenant_id
LEFT JOIN tenant_history th ON th.tenant_id = w.tenant_id
LEFT JOIN ok ON ok.tenant_id = w.tenant_id AND ok.src = w.src
            AND ok.time > w.time AND ok.time <= w.last_failure + INTERVAL '1 hour'
WHERE w.failures >= {burst_failures}
GROUP BY w.tenant_id, w.time, w.actor_id, w.client_ip, w.src, w.failures, w.last_failure
ORDER BY w.tenant_id, w.src, w.time
