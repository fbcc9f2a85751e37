-- key_first_use: when was each key first used, by whom, from where — and when was it created?
-- A use is a successful key_use event naming the key (ouid); ties on time go to the smallest trace_id.
-- Two passes over the events: one aggregation per key (its first use's time, its uses, its
-- creation), then the uses at that first time, joined back by (tenant, key, time); of those the
-- one with the smallest trace_id is kept by a window over the keys in order (lag, not a
-- row_number per key: DataFusion 55 pays a window partition per key, 1.2 s for 300k keys).
-- first_value(... ORDER BY time, trace_id) says it in one aggregation, but DataFusion 55's ordered
-- first_value walks every group on every batch: 10.8 s on a 10M-event year with 300k keys; the
-- min()-and-joins form before this one took three passes and 5.9 s; this one 3.1-3.6 s.
-- The second pass asks for successes through the join (outcome as a fourth key, `k.ok`), not by a
-- filter on events: a filter keeping 99% of 10M rows copied every column it passed (0.28 CPU-s), the
-- extra key costs a hash per row; 7-8% less CPU for the view, same rows.
-- The tenant is marked where it goes: a session of a few tenants runs the view once per tenant
-- (src/query/per_tenant.rs), grouping and joining on ouid alone: 2.25 against 2.51 s, same rows.
-- There the second pass joins no tenant column ({tenant:e.tenant_id} is the literal: the scan reads
-- only that tenant's files) and the window does not sort on the tenant; with the sort key, DataFusion
-- 55 pushed the sort below the catalog join and then rejected its own plan (SanityCheckPlan).
-- The first uses' strings are copied (arrow_cast to Utf8) before the window sorts them: out of the
-- join they are views into the whole pages the events were read from, and the sort counted those
-- pages against its share of the memory pool. On a 10M-event year the view failed ("Not enough
-- memory to continue external sort") under --memory-limit 1GB, and three runs of four at 16
-- partitions (an 8-core machine) with half of 23 GiB; copied, it runs under 512MB, in the same
-- time (2,047 against 2,096 ms and 2,021 against 1,888 ms in a session, standard and zones), same rows.
CREATE VIEW key_first_use AS
WITH keys AS (
    SELECT {tenant:tenant_id} AS tenant_id,
           ouid,
           'success' AS ok,
           min(time) FILTER (WHERE category = 'key_use')    AS first_use,
           count(*)  FILTER (WHERE category = 'key_use')    AS uses,
           min(time) FILTER (WHERE category = 'key_create') AS created_at
    FROM events_categorized
    WHERE {tenant_rows:tenant_id} AND ouid IS NOT NULL AND outcome = 'success'
      AND category IN ('key_use', 'key_create')
    GROUP BY {tenant:tenant_id}, ouid
    HAVING count(*) FILTER (WHERE category = 'key_use') > 0
),
uses_at_first AS (
    SELECT k.tenant_id, k.ouid, k.first_use,
           arrow_cast(e.action, 'Utf8') AS action, arrow_cast(e.actor_id, 'Utf8') AS actor_id,
           arrow_cast(e.client_ip, 'Utf8') AS client_ip, arrow_cast(e.role, 'Utf8') AS role,
           arrow_cast(e.trace_id, 'Utf8') AS trace_id, k.created_at, k.uses
    FROM keys k
    JOIN events e ON {tenant_rows:e.tenant_id} AND {tenant:e.tenant_id} = k.tenant_id AND e.ouid = k.ouid AND e.time = k.first_use AND e.outcome = k.ok
    JOIN action_catalog c ON c.vendor = e.vendor AND c.action = e.action
    WHERE c.category = 'key_use'
),
first_uses AS (
    SELECT u.*,
           lag(u.tenant_id) OVER by_key AS previous_tenant,
           lag(u.ouid)      OVER by_key AS previous_ouid
    FROM uses_at_first u
    WINDOW by_key AS (ORDER BY {tenant:u.tenant_id}, u.ouid, u.trace_id)
)
SELECT tenant_id, ouid, first_use, action, actor_id, client_ip, role, created_at, uses
FROM first_uses
WHERE (previous_tenant IS DISTINCT FROM tenant_id) OR (previous_ouid IS DISTINCT FROM ouid);
