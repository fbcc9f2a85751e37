-- daily_activity: per tenant and day, how many events and failures, by how many actors, IPs and keys?
CREATE VIEW daily_activity AS
SELECT tenant_id,
       day,
       count(*)                                                                AS events,
       count(*) FILTER (WHERE outcome = 'failure')                             AS failures,
       count(DISTINCT actor_id)                                                AS actors,
       count(DISTINCT client_ip)                                               AS client_ips,
       count(DISTINCT ouid) FILTER (WHERE category = 'key_use' AND outcome = 'success') AS keys_used
FROM events_categorized
GROUP BY tenant_id, day;
