-- Amazon Athena: the auditlake lake in S3 as an external Parquet table, with partition
-- projection on tenant_id and day, so no partition ever needs registering (no MSCK REPAIR,
-- no Glue crawler): new days and tenants are queryable as soon as `convert` writes them.
-- Replace ${LAKE} with s3://bucket/prefix (no trailing slash) and ${FIRST_DAY} with the
-- lake's first day (auditlake status). tenant_id is `injected`: every query must say which
-- tenant(s) with tenant_id = '...' or IN (...); for a fixed set of tenants use
-- 'projection.tenant_id.type'='enum' with 'projection.tenant_id.values'='id1,id2' instead.
-- Tenant ids holding characters outside [A-Za-z0-9._-] are percent-encoded in the path:
-- give them encoded with injected projection. Athena lists the projected directories
-- itself: while `auditlake compact` runs, a partition may be read twice.

CREATE EXTERNAL TABLE IF NOT EXISTS auditlake_events (
  `time`      timestamp,  -- Parquet INT64 TIMESTAMP(MICROS, UTC); Athena shows it in UTC
  vendor      string,
  source      string,
  resource_id string,
  actor_id    string,
  action      string,
  status      string,
  outcome     string,     -- success / failure
  trace_id    string,
  client_ip   string,
  hsm_id      string,
  part_id     string,
  role        string,
  ouid        string,
  meta        string,     -- JSON text: json_extract_scalar(meta, '$.clientip')
  extra       string      -- JSON text, null when there were no unknown keys
)
PARTITIONED BY (
  tenant_id   string,
  `day`       date        -- the UTC day of `time`
)
STORED AS PARQUET
LOCATION '${LAKE}/events/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.tenant_id.type' = 'injected',
  'projection.day.type' = 'date',
  'projection.day.format' = 'yyyy-MM-dd',
  'projection.day.range' = '${FIRST_DAY},NOW',
  'projection.day.interval' = '1',
  'projection.day.interval.unit' = 'DAYS',
  'storage.location.template' = '${LAKE}/events/tenant_id=${tenant_id}/day=${day}/'
);
