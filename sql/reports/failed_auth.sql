-- title: Failed authentication by client IP
-- question: Which client IPs failed to log in during the period, how often, and as how many actors?
-- flag: failures >= 5
-- flag_rule: a client IP with 5 or more failed logins in the period
SELECT tenant_id, client_ip, failures, actors, first_failure, last_failure
FROM failed_logins
ORDER BY failures DESC, tenant_id, client_ip
