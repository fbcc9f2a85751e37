-- kind: new_key_user
-- report: key_first_use
-- rule: a key with {key_owner_min_uses} or more uses in the look-back window, all by at most {key_owner_max_actors} actors, used in the period by another actor (medium; low when that actor already used other keys of the same partition in the look-back, or is new to the tenant: the new_actor rule's)
WITH cat AS (SELECT vendor, action FROM action_catalog WHERE category = 'key_use'),
bu AS (
    SELECT b.tenant_id, b.ouid, b.actor_id, coalesce(b.part_id, b.hsm_id, '') AS place
    FROM events_baseline b JOIN cat c ON c.vendor = b.vendor AND c.action = b.action
    WHERE b.outcome = 'success' AND b.ouid IS NOT NULL AND b.actor_id IS NOT NULL
),
owned AS (
    SELECT tenant_id, ouid, count(*) AS baseline_uses, min(place) AS place,
           array_to_string(array_sort(array_agg(DISTINCT actor_id)), ', ') AS owners
    FROM bu GROUP BY tenant_id, ouid
    HAVING count(*) >= {key_owner_min_uses} AND count(DISTINCT actor_id) <= {key_owner_max_actors}
),
owner_actors AS (SELECT DISTINCT tenant_id, ouid, actor_id FROM bu),
-- Where each actor already worked with keys: a partition (DPoD) or HSM it knows; a key's place is where its owners used it.
place_actors AS (SELECT tenant_id, place, actor_id, count(*) AS place_uses FROM bu GROUP BY tenant_id, place, actor_id),
known AS (SELECT DISTINCT tenant_id, actor_id FROM events_baseline WHERE actor_id IS NOT NULL),
pu AS (
    SELECT e.tenant_id, e.ouid, e.actor_id, e.client_ip, e.time
    FROM events e JOIN cat c ON c.vendor = e.vendor AND c.action = e.action
    WHERE e.outcome = 'success' AND e.ouid IS NOT NULL AND e.actor_id IS NOT NULL
)
SELECT pu.tenant_id, min(pu.time) AS time, pu.actor_id,
       array_to_string(array_sort(array_agg(DISTINCT pu.client_ip)), ', ') AS client_ip, pu.ouid,
       count(*) AS uses, min(o.owners) AS owners, min(o.baseline_uses) AS baseline_uses,
       min(o.place) AS place, coalesce(max(pa.place_uses), 0) AS place_uses,
       bool_or(k.actor_id IS NOT NULL) AS actor_known
FROM pu
JOIN owned o ON o.tenant_id = pu.tenant_id AND o.ouid = pu.ouid
LEFT JOIN owner_actors oa ON oa.tenant_id = pu.tenant_id AND oa.ouid = pu.ouid AND oa.actor_id = pu.actor_id
LEFT JOIN place_actors pa ON pa.tenant_id = pu.tenant_id AND pa.place = o.place AND pa.actor_id = pu.actor_id
LEFT JOIN known k ON k.tenant_id = pu.tenant_id AND k.actor_id = pu.actor_id
WHERE oa.actor_id IS NULL
GROUP BY pu.tenant_id, pu.ouid, pu.actor_id
ORDER BY pu.tenant_id, time
