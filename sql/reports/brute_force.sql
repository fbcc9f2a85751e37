-- title: Brute-force bursts
-- question: Which client IPs failed to log in 10 or more times within one 10-minute window?
-- flag: true
-- flag_rule: every burst
SELECT tenant_id, client_ip, window_start, failures
FROM login_bursts
ORDER BY window_start, tenant_id, client_ip
