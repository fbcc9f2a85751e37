-- new_client_ips: from which IPs does each actor work, since when, until when, how much?
-- Sort by first_seen to see access from new places.
-- The tenant is marked where it goes: a session of a few tenants runs the view once per tenant
-- (src/query/per_tenant.rs), grouping 10M rows on actor and IP without writing out, hashing and
-- comparing each row's 36-byte tenant.
CREATE VIEW new_client_ips AS
SELECT {tenant:tenant_id} AS tenant_id, actor_id, client_ip, min(time) AS first_seen, max(time) AS last_seen, count(*) AS events
FROM events
WHERE {tenant_rows:tenant_id}
GROUP BY {tenant:tenant_id}, actor_id, client_ip;
