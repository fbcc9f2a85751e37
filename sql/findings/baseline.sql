-- baseline: what every finding rule shares — each event's local time (local_offset: the tenant's zone from the rules, summer time followed), the hours and days of the week each tenant works in its look-back window (events_baseline), and how many days of history that window holds.
-- rule_tenants holds one row per tenant named in the rules and a '*' row for the others; parameters in braces are numbers from the rules.
CREATE VIEW tenant_history AS
SELECT tenant_id, count(DISTINCT day) AS history_days, count(*) AS history_events
FROM events_baseline
GROUP BY tenant_id;

CREATE VIEW tenant_clocks AS
SELECT t.tenant_id,
       CASE WHEN z.tenant_id IS NULL THEN d.work_start ELSE z.work_start END AS work_start,
       CASE WHEN z.tenant_id IS NULL THEN d.work_end ELSE z.work_end END AS work_end,
       CASE WHEN z.tenant_id IS NULL THEN d.work_days ELSE z.work_days END AS work_days
FROM (SELECT DISTINCT tenant_id FROM events UNION SELECT DISTINCT tenant_id FROM events_baseline) t
CROSS JOIN (SELECT * FROM rule_tenants WHERE tenant_id = '*') d
LEFT JOIN rule_tenants z ON z.tenant_id = t.tenant_id;

CREATE VIEW period_local AS
SELECT l.tenant_id, l.time, l.day, l.actor_id, l.client_ip, l.vendor, l.action, l.outcome, l.ouid,
       l.role, l.part_id, l.hsm_id, l.local_time,
       CAST(date_part('hour', l.local_time) AS INT) AS local_hour,
       CAST(date_part('hour', l.local_time) * 60 + date_part('minute', l.local_time) AS INT) AS local_minute,
       CAST(date_part('dow', l.local_time) AS INT) AS local_dow,
       l.work_start, l.work_end, l.work_days
FROM (SELECT e.*, e.time + local_offset(e.tenant_id, e.time) AS local_time,
             k.work_start, k.work_end, k.work_days
      FROM events e JOIN tenant_clocks k ON k.tenant_id = e.tenant_id) l;

CREATE VIEW baseline_local AS
SELECT l.tenant_id, l.local_time,
       CAST(date_part('hour', l.local_time) AS INT) AS local_hour,
       CAST(date_part('dow', l.local_time) AS INT) AS local_dow
FROM (SELECT e.tenant_id, e.time + local_offset(e.tenant_id, e.time) AS local_time
      FROM events_baseline e) l;

-- An hour of the day, or a day of the week, is worked when the tenant was active in it on enough distinct days.
CREATE VIEW worked_hours AS
SELECT tenant_id, local_hour FROM baseline_local
GROUP BY tenant_id, local_hour
HAVING count(DISTINCT date_trunc('day', local_time)) >= {worked_min_days};

CREATE VIEW worked_days AS
SELECT tenant_id, local_dow FROM baseline_local
GROUP BY tenant_id, local_dow
HAVING count(DISTINCT date_trunc('day', local_time)) >= {worked_min_days};

-- Each event of the period with whether it falls outside the tenant's working time: its set business
-- hours when the rules give them, else the hours and days it was seen working (null: no usable history).
CREATE VIEW period_clock AS
SELECT p.*,
       CASE WHEN p.work_start IS NOT NULL THEN
                NOT (p.local_minute >= p.work_start AND p.local_minute < p.work_end
                     AND strpos(p.work_days, CAST(p.local_dow AS VARCHAR)) > 0)
            WHEN coalesce(th.history_days, 0) < {min_history_days} THEN NULL
            ELSE (wh.local_hour IS NULL OR wd.local_dow IS NULL)
       END AS off_hours,
       p.work_start IS NOT NULL AS hours_set
FROM period_local p
LEFT JOIN tenant_history th ON th.tenant_id = p.tenant_id
LEFT JOIN worked_hours wh ON wh.tenant_id = p.tenant_id AND wh.local_hour = p.local_hour
LEFT JOIN worked_days wd ON wd.tenant_id = p.tenant_id AND wd.local_dow = p.local_dow;
