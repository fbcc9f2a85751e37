#!/usr/bin/env python3
"""Other engines read the lake auditlake writes: pyarrow and DuckDB, with Hive partitioning.

Usage: tests/interop.py AUDITLAKE_BINARY
Converts testdata/sample (three DPoD tenants and an AWS CloudHSM cluster) and generated
logs of every other vendor (a mixed lake, see mixed_lake.py) into a temp lake with the
given binary, then checks
that pyarrow and DuckDB each see the same rows, with time as a UTC timestamp
and the partition columns typed, and that their row sets agree with each other
and with `auditlake status`. Ends with an 'N passed, N failed' line.
"""
import json
import os
import subprocess
import sys
import tempfile

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

import mixed_lake

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
passed, failed = 0, 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def main(binary):
    with tempfile.TemporaryDirectory() as tmp:
        lake = os.path.join(tmp, "lake")
        mixed_lake.build(binary, tmp, lake)
        status = json.loads(subprocess.run([binary, "status", "--lake", lake, "--json"], check=True,
                                           capture_output=True).stdout)
        events = os.path.join(lake, "events")

        part = ds.partitioning(pa.schema([("tenant_id", pa.string()), ("day", pa.date32())]), flavor="hive")
        table = ds.dataset(events, format="parquet", partitioning=part).to_table()
        check("pyarrow: time is timestamp[us, tz=UTC]", table.schema.field("time").type == pa.timestamp("us", tz="UTC"),
              str(table.schema.field("time").type))
        check("pyarrow: row count equals status", table.num_rows == status["events"], f"{table.num_rows} vs {status['events']}")
        keys = set(zip(table.column("tenant_id").to_pylist(), table.column("trace_id").to_pylist()))
        check("pyarrow: (tenant_id, trace_id) unique", len(keys) == table.num_rows)
        per_tenant = {t["tenant_id"]: t["events"] for t in status["tenants"]}
        counts = {}
        for t in table.column("tenant_id").to_pylist():
            counts[t] = counts.get(t, 0) + 1
        check("pyarrow: per-tenant counts equal status", counts == per_tenant, f"{counts} vs {per_tenant}")
        days_ok = all(d == ts.date() for d, ts in zip(table.column("day").to_pylist(), table.column("time").to_pylist()))
        check("pyarrow: day partition is the UTC date of time", days_ok)
        vendors = sorted(set(table.column("vendor").to_pylist()))
        check("pyarrow: every vendor in the lake", vendors == mixed_lake.VENDORS, str(vendors))

        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        rel = f"read_parquet('{events}/**/*.parquet', hive_partitioning = true)"
        types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {rel})").fetchall())
        check("duckdb: time is TIMESTAMP WITH TIME ZONE", types.get("time") == "TIMESTAMP WITH TIME ZONE", str(types.get("time")))
        check("duckdb: day is a DATE partition", types.get("day") == "DATE", str(types.get("day")))
        n = con.execute(f"SELECT count(*) FROM {rel}").fetchone()[0]
        check("duckdb: row count equals status", n == status["events"], f"{n}")

        cols = "tenant_id, CAST(day AS VARCHAR), epoch_us(time), vendor, trace_id, action, status, outcome, client_ip, ouid, meta"
        duck_rows = sorted(con.execute(f"SELECT {cols} FROM {rel}").fetchall(), key=repr)
        arrow_rows = sorted(zip(
            table.column("tenant_id").to_pylist(),
            [d.isoformat() for d in table.column("day").to_pylist()],
            pa.compute.cast(table.column("time"), pa.int64()).to_pylist(),
            *(table.column(c).to_pylist() for c in ["vendor", "trace_id", "action", "status", "outcome", "client_ip", "ouid", "meta"]),
        ), key=repr)
        check("duckdb and pyarrow see the same rows", duck_rows == arrow_rows,
              f"{len(duck_rows)} vs {len(arrow_rows)}")

    print(f"interop: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
