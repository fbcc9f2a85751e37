-- title: Off-hours activity
-- question: Who worked outside office hours (before 06:00 or from 22:00, or at weekends, on the tenant's clock: the rules' time zone, else UTC), from where, and how much?
-- flag: true
-- flag_rule: any activity outside office hours
SELECT day, tenant_id, actor_id, client_ip, events
FROM off_hours_activity
ORDER BY day, events DESC, tenant_id, actor_id, client_ip
