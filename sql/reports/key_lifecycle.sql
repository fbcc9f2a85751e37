-- title: Key lifecycle changes
-- question: Which keys were created or destroyed in the period, and how much were they used?
-- flag: destroyed_at IS NOT NULL
-- flag_rule: a key destroyed in the period
SELECT tenant_id, ouid, created_at, destroyed_at, first_use, last_use, uses, failed_uses
FROM key_lifecycle
WHERE created_at IS NOT NULL OR destroyed_at IS NOT NULL
ORDER BY coalesce(destroyed_at, created_at), tenant_id, ouid
