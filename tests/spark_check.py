"""Spark reads the lake as it is: PySpark runs sql/external/spark.sql over the mixed lake
(testdata/sample and generated logs of every other vendor, see mixed_lake.py)
and must find the same per-tenant and per-day counts as `auditlake status --json` and
`auditlake query`, `time` as a UTC timestamp and `day` as a date (the UTC day of `time`).

Usage: python tests/spark_check.py path/to/auditlake   (run by .ci/run; needs Java 17+
and pyspark). Exits 0 when every check holds, 1 otherwise.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mixed_lake  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def auditlake(binary, *args):
    out = subprocess.run([binary, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"spark_check: auditlake {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def statements(path, lake):
    """The DDL file's statements, comments dropped, ${LAKE} filled in."""
    text = path.read_text().replace("${LAKE}", lake)
    text = "\n".join(re.sub(r"--.*$", "", line) for line in text.splitlines())
    return [s.strip() for s in text.split(";") if s.strip()]


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/debug/auditlake")
    from pyspark.sql import SparkSession
    from pyspark.sql.types import DateType, TimestampType

    failures = []
    passed = 0

    def check(ok, what):
        nonlocal passed
        if ok:
            passed += 1
        else:
            failures.append(what)
            print(f"FAIL: {what}", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        lake = os.path.join(tmp, "lake")
        mixed_lake.build(binary, tmp, lake)
        status = json.loads(auditlake(binary, "status", "--json", "--lake", lake))
        per_day = {}
        for line in auditlake(
            binary, "query", "--format", "ndjson", "--lake", lake,
            "SELECT tenant_id, CAST(day AS VARCHAR) AS day, count(*) AS n FROM events GROUP BY 1, 2",
        ).splitlines():
            r = json.loads(line)
            per_day[(r["tenant_id"], r["day"])] = r["n"]
        first = json.loads(auditlake(
            binary, "query", "--format", "ndjson", "--lake", lake,
            "SELECT CAST(min(time) AS VARCHAR) AS t FROM events",
        ).splitlines()[0])["t"]

        spark = (
            SparkSession.builder.master("local[2]")
            .appName("auditlake-spark-check")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        try:
            for stmt in statements(ROOT / "sql/external/spark.sql", "file://" + lake):
                spark.sql(stmt)
            table = spark.table("auditlake_events")
            types = {f.name: f.dataType for f in table.schema.fields}
            check(isinstance(types["time"], TimestampType), f"time is a timestamp: {types['time']}")
            check(isinstance(types["day"], DateType), f"day is a date: {types['day']}")

            tenants = {
                r["tenant_id"]: (r["n"], r["days"], str(r["first"]), str(r["last"]))
                for r in spark.sql(
                    "SELECT tenant_id, count(*) AS n, count(DISTINCT day) AS days, "
                    "min(day) AS first, max(day) AS last FROM auditlake_events GROUP BY tenant_id"
                ).collect()
            }
            want = {
                t["tenant_id"]: (t["events"], t["days"], t["first_day"], t["last_day"])
                for t in status["tenants"]
            }
            check(tenants == want, f"per tenant (events, days, first, last): spark {tenants} status {want}")
            total = spark.sql("SELECT count(*) AS n FROM auditlake_events").collect()[0]["n"]
            check(total == status["events"], f"events: spark {total}, status {status['events']}")

            days = {
                (r["tenant_id"], str(r["day"])): r["n"]
                for r in spark.sql(
                    "SELECT tenant_id, day, count(*) AS n FROM auditlake_events GROUP BY 1, 2"
                ).collect()
            }
            check(days == per_day, f"per-day counts differ on {len(set(days.items()) ^ set(per_day.items()))} days")

            off = spark.sql(
                "SELECT count(*) AS n FROM auditlake_events WHERE to_date(time) <> day"
            ).collect()[0]["n"]
            check(off == 0, f"{off} rows whose UTC date of time is not their day")
            spark_first = spark.sql(
                "SELECT date_format(min(time), 'yyyy-MM-dd HH:mm:ss.SSSSSS') AS t FROM auditlake_events"
            ).collect()[0]["t"]
            check(
                first.replace("T", " ").rstrip("Z").startswith(spark_first.rstrip("0").rstrip(".")),
                f"first time: spark {spark_first} (UTC), auditlake {first}",
            )
        finally:
            spark.stop()

    print(f"spark_check: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
