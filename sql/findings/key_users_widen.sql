-- kind: key_users_widen
-- report: key_first_use
-- rule: a key used in the period by {key_widen_min_new} or more of the tenant's actors that never used it, nor any key of its partition, in the look-back window, at least as many as did use it then (its users at least double) (medium)
-- A partition's clients sharing its keys is routine, and a new hire is the new_actor rule's: only actors
-- the tenant knew in the look-back, but never in the key's partition, count.
WITH cat AS (SELECT vendor, action FROM action_catalog WHERE category = 'key_use'),
uses AS (
    SELECT b.tenant_id, b.ouid, b.actor_id, coalesce(b.part_id, b.hsm_id, '') AS place
    FROM events_baseline b JOIN cat c ON c.vendor = b.vendor AND c.action = b.action
    WHERE b.outcome = 'success' AND b.ouid IS NOT NULL AND b.actor_id IS NOT NULL
),
before AS (SELECT DISTINCT tenant_id, ouid, actor_id FROM uses),
in_place AS (SELECT DISTINCT tenant_id, place, actor_id FROM uses),
known AS (SELECT DISTINCT tenant_id, actor_id FROM events_baseline WHERE actor_id IS NOT NULL),
users AS (
    SELECT tenant_id, ouid, count(DISTINCT actor_id) AS baseline_users, min(place) AS place,
           array_to_string(array_sort(array_agg(DISTINCT actor_id)), ', ') AS baseline_actors
    FROM uses GROUP BY tenant_id, ouid
),
fresh AS (
    SELECT e.tenant_id, e.ouid, e.actor_id, min(e.time) AS first_use
    FROM events e
    JOIN cat c ON c.vendor = e.vendor AND c.action = e.action
    LEFT JOIN before b ON b.tenant_id = e.tenant_id AND b.ouid = e.ouid AND b.actor_id = e.actor_id
    WHERE e.outcome = 'success' AND e.ouid IS NOT NULL AND e.actor_id IS NOT NULL AND b.actor_id IS NULL
    GROUP BY e.tenant_id, e.ouid, e.actor_id
)
SELECT f.tenant_id, f.ouid, min(f.first_use) AS time, max(f.first_use) AS last_new,
       count(*) AS new_users, array_to_string(array_sort(array_agg(f.actor_id)), ', ') AS new_actors,
       u.baseline_users, u.baseline_actors, u.place
FROM fresh f
JOIN users u ON u.tenant_id = f.tenant_id AND u.ouid = f.ouid
JOIN known k ON k.tenant_id = f.tenant_id AND k.actor_id = f.actor_id
LEFT JOIN in_place p ON p.tenant_id = f.tenant_id AND p.place = u.place AND p.actor_id = f.actor_id
WHERE p.actor_id IS NULL
GROUP BY f.tenant_id, f.ouid, u.baseline_users, u.baseline_actors, u.place
HAVING count(*) >= {key_widen_min_new} AND count(*) >= u.baseline_users
ORDER BY f.tenant_id, time
