-- title: Key inventory
-- question: Which keys are there up to the end of the period, since when, how much and by how many actors and addresses are they used, which are destroyed, and was any used after its destruction?
-- flag: uses_after_destroy > 0
-- flag_rule: a key used successfully after its destruction
SELECT tenant_id, ouid, vendor, created_at, first_use, last_use, uses, failed_uses, actors, client_ips,
       destroyed_at, uses_after_destroy, age_days
FROM key_inventory
ORDER BY tenant_id, COALESCE(created_at, first_seen), ouid
