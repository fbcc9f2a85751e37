-- off_hours_activity: who worked outside office hours (before 06:00 or from 22:00, or at weekends, on the tenant's own clock), from where?
-- The clock is the tenant's time zone in the rules (summer time followed), UTC where none is set: see events_local.
CREATE VIEW off_hours_activity AS
SELECT tenant_id, day, actor_id, client_ip, count(*) AS events
FROM events_local
WHERE date_part('hour', local_time) < 6
   OR date_part('hour', local_time) >= 22
   OR date_part('dow', local_time) IN (0, 6)
GROUP BY tenant_id, day, actor_id, client_ip;
