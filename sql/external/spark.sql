-- Spark SQL: the auditlake lake as an external Parquet table, read in place.
-- Replace ${LAKE} with the lake's location (a path, s3a://bucket/prefix, abfss://..., gs://...);
-- tests/spark_check.py runs this file against the sample lake. Set
-- spark.sql.session.timeZone=UTC to show `time` in UTC (it is stored as UTC instants).
-- Files under events/ that start with "." or "_" (temporary files) are skipped by Spark.
-- While `auditlake compact` runs, a partition may be read twice: Spark lists the
-- directories itself and knows nothing of auditlake's compaction manifest.

CREATE TABLE IF NOT EXISTS auditlake_events (
  time        TIMESTAMP,   -- Parquet INT64 TIMESTAMP(MICROS, UTC)
  vendor      STRING,
  source      STRING,
  resource_id STRING,
  actor_id    STRING,
  action      STRING,
  status      STRING,
  outcome     STRING,      -- success / failure
  trace_id    STRING,
  client_ip   STRING,
  hsm_id      STRING,
  part_id     STRING,
  role        STRING,
  ouid        STRING,
  meta        STRING,      -- JSON text
  extra       STRING,      -- JSON text, null when there were no unknown keys
  tenant_id   STRING,      -- partition column (percent-encoded in the path)
  day         DATE         -- partition column: the UTC day of `time`
)
USING parquet
PARTITIONED BY (tenant_id, day)
LOCATION '${LAKE}/events';

-- Register the partitions found under the location (again after each conversion).
ALTER TABLE auditlake_events RECOVER PARTITIONS;
