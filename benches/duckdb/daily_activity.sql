-- daily_activity for DuckDB in benches/compare.py: the same rows as
-- sql/views/daily_activity.sql, in the form that joins every event to the catalog, which DuckDB
-- runs fastest (1.28 s against 1.77 s for the catalog spelled out as IN lists on the 10M-event
-- year, medians of 5 in one session), so each engine runs its own fastest form of the view.
CREATE VIEW daily_activity AS
SELECT tenant_id,
       day,
       count(*)                                                                AS events,
       count(*) FILTER (WHERE outcome = 'failure')                             AS failures,
       count(DISTINCT actor_id)                                                AS actors,
       count(DISTINCT client_ip)                                               AS client_ips,
       count(DISTINCT ouid) FILTER (WHERE category = 'key_use' AND outcome = 'success') AS keys_used
FROM events_categorized
GROUP BY tenant_id, day;
