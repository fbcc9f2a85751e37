-- off_hours_activity: who worked outside office hours (UTC before 06:00 or from 22:00, or at weekends), from where?
CREATE VIEW off_hours_activity AS
SELECT tenant_id, day, actor_id, client_ip, count(*) AS events
FROM events
WHERE date_part('hour', time) < 6
   OR date_part('hour', time) >= 22
   OR date_part('dow', time) IN (0, 6)
GROUP BY tenant_id, day, actor_id, client_ip;
