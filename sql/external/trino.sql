-- Trino, Hive connector: the auditlake lake as an external Parquet table, read in place.
-- Replace ${CATALOG} (a Hive connector catalog), ${SCHEMA} and ${LAKE} (s3://bucket/prefix,
-- abfs://..., gs://...). In the catalog's properties set hive.parquet.time-zone=UTC and
-- hive.timestamp-precision=MICROSECONDS: `time` is stored as UTC instants in microseconds.
-- Partition columns come last, as the Hive connector wants. Trino lists directories itself:
-- while `auditlake compact` runs, a partition may be read twice.

CREATE SCHEMA IF NOT EXISTS ${CATALOG}.${SCHEMA};

CREATE TABLE IF NOT EXISTS ${CATALOG}.${SCHEMA}.auditlake_events (
  time        timestamp(6),  -- Parquet INT64 TIMESTAMP(MICROS, UTC), read as UTC (see above)
  vendor      varchar,
  source      varchar,
  resource_id varchar,
  actor_id    varchar,
  action      varchar,
  status      varchar,
  outcome     varchar,       -- success / failure
  trace_id    varchar,
  client_ip   varchar,
  hsm_id      varchar,
  part_id     varchar,
  role        varchar,
  ouid        varchar,
  meta        varchar,       -- JSON text: json_extract_scalar(meta, '$.clientip')
  extra       varchar,       -- JSON text, null when there were no unknown keys
  tenant_id   varchar,       -- partition column
  day         date           -- partition column: the UTC day of `time`
)
WITH (
  format = 'PARQUET',
  external_location = '${LAKE}/events',
  partitioned_by = ARRAY['tenant_id', 'day']
);

-- Register the partitions found under the location (again after each conversion or prune;
-- 'FULL' also drops the partitions prune removed).
CALL ${CATALOG}.system.sync_partition_metadata('${SCHEMA}', 'auditlake_events', 'FULL');
