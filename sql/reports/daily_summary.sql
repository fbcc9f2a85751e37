-- title: Daily activity summary
-- question: How many events and failures were there each day, by how many actors and IPs, on how many keys?
-- flag: false
-- flag_rule: none (context for the other reports)
SELECT day, tenant_id, events, failures, actors, client_ips, keys_used
FROM daily_activity
ORDER BY day, tenant_id
