-- kind: off_hours
-- report: off_hours
-- rule: activity in hours or on days the tenant never works — learned from the look-back window (an hour or weekday worked on fewer than {worked_min_days} days), or outside the business hours the rules set (medium)
SELECT tenant_id, min(time) AS time, actor_id, client_ip, CAST(NULL AS VARCHAR) AS ouid,
       date_trunc('day', min(local_time)) AS local_day, min(local_time) AS first_local, max(local_time) AS last_local,
       count(*) AS events, bool_or(hours_set) AS hours_set
FROM period_clock
WHERE off_hours
GROUP BY tenant_id, actor_id, client_ip, date_trunc('day', local_time)
ORDER BY tenant_id, time
