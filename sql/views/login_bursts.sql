-- login_bursts: which client IPs failed to log in 10 or more times within one 10-minute window?
CREATE VIEW login_bursts AS
SELECT tenant_id,
       client_ip,
       date_bin(INTERVAL '10 minutes', time) AS window_start,
       count(*)                              AS failures
FROM events_categorized
WHERE category = 'auth' AND outcome = 'failure'
GROUP BY tenant_id, client_ip, date_bin(INTERVAL '10 minutes', time)
HAVING count(*) >= 10;
