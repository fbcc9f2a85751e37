-- failed_logins: which client IPs failed to log in, how often, as how many actors, and when?
CREATE VIEW failed_logins AS
SELECT tenant_id,
       client_ip,
       count(*)                 AS failures,
       count(DISTINCT actor_id) AS actors,
       min(time)                AS first_failure,
       max(time)                AS last_failure
FROM events_categorized
WHERE category = 'auth' AND outcome = 'failure'
GROUP BY tenant_id, client_ip;
