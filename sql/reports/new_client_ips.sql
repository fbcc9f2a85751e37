-- title: New client IPs per actor
-- question: From which IPs did each actor work for the first time in the period?
-- flag: known_actor
-- flag_rule: an actor seen before the period, now working from an IP it never used before
-- (events without an address, such as every AWS CloudHSM event, name no IP to be new)
WITH before_pairs AS (SELECT DISTINCT tenant_id, actor_id, client_ip FROM events_before_period),
     before_actors AS (SELECT DISTINCT tenant_id, actor_id FROM events_before_period)
SELECT n.tenant_id, n.actor_id, n.client_ip, n.first_seen, n.last_seen, n.events,
       a.actor_id IS NOT NULL AS known_actor
FROM new_client_ips n
LEFT JOIN before_pairs p ON p.tenant_id = n.tenant_id AND p.actor_id = n.actor_id AND p.client_ip = n.client_ip
LEFT JOIN before_actors a ON a.tenant_id = n.tenant_id AND a.actor_id = n.actor_id
WHERE n.client_ip IS NOT NULL AND p.client_ip IS NULL
ORDER BY n.first_seen, n.tenant_id, n.actor_id, n.client_ip
