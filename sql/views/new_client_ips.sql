-- new_client_ips: from which IPs does each actor work, since when, until when, how much?
-- Sort by first_seen to see access from new places.
CREATE VIEW new_client_ips AS
SELECT tenant_id, actor_id, client_ip, min(time) AS first_seen, max(time) AS last_seen, count(*) AS events
FROM events
GROUP BY tenant_id, actor_id, client_ip;
