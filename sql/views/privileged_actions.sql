-- privileged_actions: every destroy, PIN change, partition init or zeroize, clone and replication — who, when, from where.
-- The events of these categories' catalog rows are chosen first (a semi join, no columns copied),
-- then categorised as events_categorized does; the catalog holds one row per (vendor, action), so
-- each chosen event meets exactly its own row. DataFusion 55 keeps `category IN (...)` over
-- events_categorized as a filter after the outer join, over every event (1.3 s against 2.0 s on a
-- 10M-event year). Not a plain inner join with the catalog: under a tenant scope DataFusion 55
-- pushes an ORDER BY through such a join to the wrong side and rejects its own plan
-- (apache/datafusion#23590).
CREATE VIEW privileged_actions AS
SELECT e.*, COALESCE(c.category, 'other') AS category
FROM (
    SELECT *
    FROM events x
    WHERE EXISTS (SELECT 1
                  FROM action_catalog p
                  WHERE p.vendor = x.vendor AND p.action = x.action
                    AND p.category IN ('key_destroy', 'user_admin', 'partition_admin', 'replication'))
) e
LEFT JOIN action_catalog c ON c.vendor = e.vendor AND c.action = e.action;
