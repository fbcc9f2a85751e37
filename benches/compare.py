#!/usr/bin/env python3
"""End-to-end benchmark: auditlake against DuckDB, side by side, in one run.

Usage:
  python3 benches/compare.py [--events N] [--tenants K] [--reps R] [--binary PATH]
                             [--work DIR] [--json OUT] [--smoke] [--no-verify]
  benches/run.sh [same arguments]   # venv with duckdb + pyarrow, release build, then this

What it measures, in order (see benches/README.md for how to read the table):

1. Data. `auditlake generate --events N --tenants K --seed 1` writes zip exports
   (one per tenant and month, overlapping 6 h at month edges). DuckDB cannot
   read zip, so the exports are also unzipped to plain .json files. Both are
   cached under WORK/data/ per events/tenants/seed and are never timed.
   Before the timed steps every input file is read once, so both engines
   read from the page cache.
2. Inflate floor. `auditlake inflate EXPORTS` (a hidden subcommand) only reads
   and inflates every member on all cores; its time is the floor under which
   no converter reading zips can go. Shown as "skipped" if the binary lacks it.
3. auditlake convert: `auditlake convert EXPORTS --lake LAKE --json -q` into a
   fresh lake. Seconds are the ones the summary reports (the whole run: read,
   decode, dedupe, write, ledger); wall time is shown too.
4. DuckDB convert: in a child Python process, all threads, one
   `COPY (SELECT ... FROM read_json([...])) TO ... (PARTITION_BY (tenant_id, day), zstd 3)`
   from the unzipped .json files, producing auditlake's columns (same time
   parsing, meta normalised and flattened, outcome rule). Seconds are those of
   the COPY statement alone. DuckDB does not deduplicate overlapping exports,
   so its lake holds more rows; both counts are shown.
4b. One export: the largest monthly export alone into a fresh lake (the daily or
   monthly job's shape), both engines, with the CPU seconds of each process
   (cores busy = CPU s / wall s); then the same records re-written with the whole
   JSON array on one single line (cached under WORK/data/.../one-line/). Each of
   the four conversions runs R times, interleaved; the run with the median
   seconds is reported (a single sub-second run moves by 20% on a shared VM).
5. Peak memory: each measured program is started by a small launcher process
   (a fresh Python, not this harness: Linux keeps a parent's high-water mark in
   a child across exec) and reaped with os.wait4(), whose rusage is that one
   child's (ru_maxrss), so no external tool is needed and neither earlier
   children nor this harness leak into the number.
   The DuckDB figure includes the Python interpreter it runs in (the baseline
   of Python + duckdb doing nothing is reported in the notes).
6. Queries over the auditlake lake (the same lake for both engines): for each
   standard view, `SELECT count(*) AS n, count(<column>)... FROM <view>` over
   every column of the view (so no aggregate is left out), plus a point lookup
   `SELECT * FROM events WHERE ouid = '<a key in the lake>'`. auditlake runs
   them in one `auditlake repl` session fed on stdin and reports its own
   per-statement time (plan + execute + print). DuckDB runs them on one
   connection over read_parquet(..., hive_partitioning = true), with the views
   created from the same sql/views/*.sql and sql/action_catalog.sql files
   (DataFusion's date_bin becomes DuckDB's time_bucket, same buckets, and the
   ordered aggregate first_value(x ORDER BY ...) becomes first(x ORDER BY ...)),
   except where benches/duckdb/ holds DuckDB's own faster form of a view (the
   same rows: privileged_actions as an outer join and a filter, daily_activity joined to the
   catalog instead of `{category:key_use}` spelled out as IN lists). Each
   statement runs R times back to back; the median is reported. The row
   counts of both engines must agree, or the run fails.
7. Verify (default on): the set of rows in DuckDB's lake equals the set in
   auditlake's (DuckDB's extra rows are exact duplicates), so both sides
   really produced the same data: every row of both lakes is hashed over all
   columns and the distinct hashes compared. Untimed; --no-verify skips it.

Ratios: every ratio is written so that > 1 means auditlake is better —
times, memory and bytes as duckdb / auditlake, events/s as auditlake / duckdb.

The table goes to stdout, progress to stderr, everything as JSON to --json
(default WORK/results-<events>.json). --smoke is a tiny run for CI (20000
events, 1 rep): it checks that every step works and never asserts timings.
Exit status: 0, or 1 when a step failed (the table shows what ran).
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VIEWS = [
    "failed_logins",
    "login_bursts",
    "key_first_use",
    "key_lifecycle",
    "actions_by_role",
    "new_client_ips",
    "off_hours_activity",
    "privileged_actions",
    "daily_activity",
]
# Each view's columns (SPEC §4). A query counts every one of them, so neither engine can
# leave a column out of the plan: `SELECT count(*) FROM key_first_use` alone let both
# optimizers drop the view's first_value aggregates, which is most of what a user's
# `SELECT * FROM key_first_use` costs.
VIEW_COLUMNS = {
    "failed_logins": ["tenant_id", "client_ip", "failures", "actors", "first_failure", "last_failure"],
    "login_bursts": ["tenant_id", "client_ip", "window_start", "failures"],
    "key_first_use": ["tenant_id", "ouid", "first_use", "action", "actor_id", "client_ip", "role",
                      "created_at", "uses"],
    "key_lifecycle": ["tenant_id", "ouid", "created_at", "first_use", "last_use", "uses", "failed_uses",
                      "destroyed_at"],
    "actions_by_role": ["tenant_id", "role", "action", "outcome", "events"],
    "new_client_ips": ["tenant_id", "actor_id", "client_ip", "first_seen", "last_seen", "events"],
    "off_hours_activity": ["tenant_id", "day", "actor_id", "client_ip", "events"],
    "privileged_actions": ["time", "vendor", "source", "resource_id", "actor_id", "action", "status",
                           "outcome", "trace_id", "client_ip", "hsm_id", "part_id", "role", "ouid",
                           "meta", "extra", "day", "tenant_id", "category"],
    "daily_activity": ["tenant_id", "day", "events", "failures", "actors", "client_ips", "keys_used"],
}
# Creation order of the view files for DuckDB (events_categorized is used by others).
VIEW_FILES = ["events_categorized"] + VIEWS
SEED = 1
# The lake shapes every run measures (issue 27: a view is ahead only when it is ahead on each).
SHAPES = {
    # three tenants keeping office hours in UTC, one record per line
    "standard": {"tenants": 3, "zones": False, "one_line_every": 0},
    # four tenants in four time zones (with summer time), one export in three on one single line
    "zones": {"tenants": 4, "zones": True, "one_line_every": 3},
}
SMOKE_EVENTS, SMOKE_REPS = 20_000, 1
MAX_OBJECT_BYTES = 16 << 20  # DuckDB read_json: largest single record accepted
TIME_FORMATS = ["%Y-%m-%d %H:%M:%S UTC", "%Y-%m-%d %H:%M:%S.%f UTC", "%Y-%m-%dT%H:%M:%S.%fZ"]


class StepFailed(Exception):
    pass


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def sql_str(s):
    return "'" + str(s).replace("'", "''") + "'"


def threads():
    return len(os.sched_getaffinity(0))


# ---------------------------------------------------------------------------
# Running one measured child


class Run:
    def __init__(self, argv, returncode, wall, maxrss_kib, stdout, stderr, cpu=None):
        self.argv, self.returncode, self.wall, self.cpu = argv, returncode, wall, cpu
        self.maxrss_mib = maxrss_kib / 1024
        self.stdout, self.stderr = stdout, stderr

    def check(self, what):
        if self.returncode != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-5:])
            raise StepFailed(f"{what}: exit {self.returncode}: {tail}")
        return self


# The launcher every measured program is started through: a fresh, small Python that
# starts argv, reaps it with os.wait4() and writes its wall time and rusage as JSON to
# the file named by its first argument (a second argument of "1" throws the program's
# stdout away). Started straight from this harness, a program would report at least
# the harness's own RSS as its peak (Linux keeps the high-water mark across exec, and
# by the later steps this process holds a DuckDB session); from the launcher it
# inherits only the launcher's few MiB. Wall time is taken there too, so the
# launcher's own start-up is not timed.
LAUNCHER = """
import json, os, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[3:], stdout=subprocess.DEVNULL if sys.argv[2] == "1" else None)
_, status, usage = os.wait4(p.pid, 0)
wall = time.perf_counter() - t
with open(sys.argv[1], "w") as f:
    json.dump({"rc": os.waitstatus_to_exitcode(status), "wall": wall, "maxrss_kib": usage.ru_maxrss,
               "cpu": usage.ru_utime + usage.ru_stime}, f)
"""


def run_measured(argv, stdin_text=None, env=None, cwd=None, discard_stdout=False):
    """Runs argv through LAUNCHER; returns its wall time, CPU time and own peak RSS.

    The launcher reaps exactly this program with os.wait4(), so ru_maxrss is the peak
    of this one process (and of children it waited for), not of every child so far, nor
    of this harness.
    """
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr, \
            tempfile.TemporaryDirectory() as tmp:
        if stdin_text is not None:
            fin.write(stdin_text.encode())
            fin.seek(0)
        report = Path(tmp) / "rusage.json"
        proc = subprocess.run([sys.executable, "-c", LAUNCHER, report, "1" if discard_stdout else "0",
                               *[str(a) for a in argv]],
                              stdin=fin, stdout=fout, stderr=ferr, env=env, cwd=cwd)
        fout.seek(0)
        ferr.seek(0)
        stdout, stderr = fout.read().decode(errors="replace"), ferr.read().decode(errors="replace")
        if proc.returncode != 0 or not report.exists():
            # The launcher itself failed (argv could not be started, say): no figures.
            return Run(argv, proc.returncode or 1, 0.0, 0, stdout, stderr, cpu=0.0)
        u = json.loads(report.read_text())
        return Run(argv, u["rc"], u["wall"], u["maxrss_kib"], stdout, stderr, cpu=u["cpu"])


def parquet_stats(root):
    """Files, bytes and rows (from the footers) of every *.parquet under root."""
    import pyarrow.parquet as pq

    files = sorted(Path(root).rglob("*.parquet")) if Path(root).is_dir() else []
    return {
        "files": len(files),
        "bytes": sum(f.stat().st_size for f in files),
        "rows": sum(pq.read_metadata(f).num_rows for f in files),
    }


# ---------------------------------------------------------------------------
# Machine and data


def machine_info(binary):
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor() or "unknown")
    mem_kib = next((int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
                    if l.startswith("MemTotal:")), 0)
    import duckdb
    import pyarrow

    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": threads(),
        "cpu_model": cpu,
        "mem_total_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "auditlake": version,
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
    }


def shape_args(zones, one_line_every):
    """`auditlake generate` arguments of the data's shape, and its name in the cache."""
    argv, name = [], ""
    if zones:
        argv, name = argv + ["--zones"], name + "_zones"
    if one_line_every:
        argv, name = argv + ["--one-line-every", one_line_every], name + f"_one-line-{one_line_every}"
    return argv, name


def prepare_data(binary, work, events, tenants, zones=False, one_line_every=0):
    """Generates the zip exports and their unzipped .json twins once per size, shape and seed."""
    shape, name = shape_args(zones, one_line_every)
    data = work / "data" / f"events-{events}_tenants-{tenants}{name}_seed-{SEED}"
    exports, jsons, stamp = data / "exports", data / "json", data / ".complete"
    if not stamp.exists():
        shutil.rmtree(data, ignore_errors=True)
        log(f"generating {events} events for {tenants} tenants into {exports}")
        run_measured([binary, "generate", "--output", exports, "--events", events,
                      "--tenants", tenants, "--seed", SEED] + shape).check("auditlake generate")
        log(f"unzipping the exports for DuckDB into {jsons}")
        jsons.mkdir(parents=True)
        for z in sorted(exports.glob("*.zip")):
            with zipfile.ZipFile(z) as zf:
                for member in zf.infolist():
                    if member.is_dir():
                        continue
                    out = jsons / f"{z.stem}--{Path(member.filename).name}"
                    with zf.open(member) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        stamp.write_text(json.dumps({"events": events, "tenants": tenants, "seed": SEED}))
    else:
        log(f"using cached data in {data}")
    zips, files = sorted(exports.glob("*.zip")), sorted(jsons.glob("*.json"))
    if not zips or not files:
        raise StepFailed(f"no exports in {data}: delete it and rerun")
    return {
        "dir": str(data), "exports": exports, "json_files": files,
        "zip_files": len(zips), "zip_bytes": sum(z.stat().st_size for z in zips),
        "json_bytes": sum(f.stat().st_size for f in files),
    }


def one_export(data, work):
    """The largest monthly export (the daily or monthly job converts exactly one), and the
    same records with the member written on one single line (both as zip and as .json)."""
    zips = sorted(data["exports"].glob("*.zip"), key=lambda z: (-z.stat().st_size, z.name))
    z = zips[0]
    jsons = [f for f in data["json_files"] if f.name.startswith(z.stem + "--")]
    one = Path(data["dir"]) / "one-line"
    one_zip, one_json = one / z.name, one / f"{z.stem}--one-line.json"
    if not one_zip.exists():
        log(f"writing {z.name}'s records on one single line into {one}")
        shutil.rmtree(one, ignore_errors=True)
        one.mkdir(parents=True)
        # In a child: the records loaded here would stay in this process (Python keeps
        # the memory it freed) for the rest of the run.
        params = one / "params.json"
        params.write_text(json.dumps({"jsons": [str(f) for f in jsons], "one_json": str(one_json),
                                      "one_zip": str(one_zip), "member": f"{z.stem}.json"}))
        run_measured([sys.executable, __file__, "--one-line-child", params]).check("write the one-line twin")
    return {"zip": z, "json_files": jsons, "one_line_zip": one_zip, "one_line_json": [one_json]}


def cloudhsm_year(binary, work, events, clusters):
    """A year of AWS CloudHSM logs as subscription deliveries (gzip, concatenated CloudWatch
    envelopes): inflate floor and convert, auditlake only."""
    data = work / "data" / f"cloudhsm-events-{events}_clusters-{clusters}_seed-{SEED}_by-time"
    logs, stamp = data / "logs", data / ".complete"
    if not stamp.exists():
        shutil.rmtree(data, ignore_errors=True)
        log(f"generating {events} AWS CloudHSM events for {clusters} clusters into {logs}")
        run_measured([binary, "generate", "--vendor", "aws-cloudhsm", "--output", logs, "--events", events,
                      "--tenants", clusters, "--seed", SEED]).check("auditlake generate --vendor aws-cloudhsm")
        stamp.write_text("{}")
    files = sorted(p for p in logs.rglob("*") if p.is_file())
    warm_cache(files)
    out = {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
    out["inflate_seconds"] = inflate_floor(binary, logs).get("seconds")
    out.update(auditlake_convert(binary, logs, work / "lakes" / f"auditlake-{data.name}"))
    return out


def one_line_child(p):
    """Runs in a child process: the records of p["jsons"] as one JSON array on one line."""
    records = []
    for f in p["jsons"]:
        records += json.loads(Path(f).read_text())
    one_json, one_zip = Path(p["one_json"]), Path(p["one_zip"])
    one_json.write_text(json.dumps(records, separators=(",", ":")))
    with zipfile.ZipFile(one_zip.with_suffix(".tmp"), "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(one_json, p["member"])
    one_zip.with_suffix(".tmp").rename(one_zip)


def warm_cache(files):
    """Reads every file once, so neither engine pays for cold disk reads the other did not."""
    for f in files:
        with open(f, "rb") as fh:
            while fh.read(8 << 20):
                pass


# ---------------------------------------------------------------------------
# Conversion


def inflate_floor(binary, exports):
    r = run_measured([binary, "inflate", exports])
    if r.returncode != 0 and "unrecognized subcommand" in r.stderr:
        return {"skipped": "this binary has no `inflate` subcommand"}
    r.check("auditlake inflate")
    line = next(l for l in r.stdout.splitlines() if l.strip().startswith("{"))
    out = json.loads(line)
    return {"seconds": out["seconds"], "bytes_in": out.get("bytes_in"), "bytes_out": out.get("bytes_out"),
            "wall": r.wall}


def auditlake_convert(binary, exports, lake):
    shutil.rmtree(lake, ignore_errors=True)
    r = run_measured([binary, "convert", exports, "--lake", lake, "--json", "-q"]).check("auditlake convert")
    summary = json.loads(r.stdout)
    lake_stats = parquet_stats(lake / "events")
    return {
        "records_read": summary["records_read"], "written": summary["written"],
        "duplicates": summary["duplicates"], "rejected": summary["rejected"],
        "seconds": summary["seconds"], "wall": r.wall, "cpu": r.cpu, "peak_rss_mib": r.maxrss_mib,
        "lake_bytes": lake_stats["bytes"], "files": lake_stats["files"], "rows": lake_stats["rows"],
    }


def duckdb_select_sql(json_files):
    """auditlake's lake columns, computed by DuckDB from the raw export records."""
    files = "[" + ", ".join(sql_str(f) for f in json_files) + "]"
    formats = "[" + ", ".join(sql_str(f) for f in TIME_FORMATS) + "]"
    return f"""
WITH raw AS (
    SELECT *,
           CAST(try_strptime(time, {formats}) AS TIMESTAMPTZ) AS ts,
           -- meta is an object, or a string holding one: normalise to the object
           CASE WHEN json_type(meta) = 'VARCHAR' AND json_valid(meta->>'$')
                THEN CAST(meta->>'$' AS JSON) ELSE meta END AS m
    FROM read_json({files}, format = 'array', maximum_object_size = {MAX_OBJECT_BYTES},
                   columns = {{time: 'VARCHAR', source: 'VARCHAR', resourceID: 'VARCHAR',
                              actorID: 'VARCHAR', tenantID: 'VARCHAR', action: 'VARCHAR',
                              status: 'VARCHAR', traceID: 'VARCHAR', meta: 'JSON'}})
)
SELECT ts                     AS time,
       'dpod'                 AS vendor,
       source,
       resourceID             AS resource_id,
       actorID                AS actor_id,
       action,
       status,
       CASE WHEN status = 'LUNA_RET_OK' OR lower(status) = 'success'
            THEN 'success' ELSE 'failure' END AS outcome,
       traceID                AS trace_id,
       m->>'clientip'         AS client_ip,
       m->>'hsmid'            AS hsm_id,
       m->>'partid'           AS part_id,
       m->>'role'             AS role,
       m->>'ouid'             AS ouid,
       CAST(m AS VARCHAR)     AS meta,
       CAST(NULL AS VARCHAR)  AS extra,
       tenantID               AS tenant_id,
       CAST(ts AS DATE)       AS day
FROM raw"""


def duckdb_convert_child(params):
    """Runs inside the measured child: the timed COPY, then untimed checks. Prints JSON."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {params['threads']}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET temp_directory = {sql_str(params['temp'])}")
    select = duckdb_select_sql(params["json_files"])
    out = params["out"]
    started = time.perf_counter()
    con.execute(f"COPY ({select}) TO {sql_str(out)} "
                "(FORMAT parquet, PARTITION_BY (tenant_id, day), COMPRESSION zstd, COMPRESSION_LEVEL 3)")
    seconds = time.perf_counter() - started
    rows, null_times, keys = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE time IS NULL), count(DISTINCT (tenant_id, trace_id)) "
        f"FROM read_parquet({sql_str(out + '/**/*.parquet')}, hive_partitioning = true)").fetchall()[0]
    print(json.dumps({"seconds": seconds, "rows": rows, "null_times": null_times, "distinct_keys": keys}))


def duckdb_convert(data, lake, work):
    shutil.rmtree(lake, ignore_errors=True)
    lake.mkdir(parents=True)  # DuckDB creates only the last level (events/)
    temp = work / "duckdb-tmp"
    params = {"threads": threads(), "json_files": [str(f) for f in data["json_files"]],
              "out": str(lake / "events"), "temp": str(temp)}
    params_file = work / "duckdb-convert-params.json"
    params_file.write_text(json.dumps(params))
    r = run_measured([sys.executable, __file__, "--duckdb-convert-child", params_file]).check("duckdb convert")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if out["null_times"]:
        raise StepFailed(f"duckdb convert: {out['null_times']} records have a time none of {TIME_FORMATS} parses")
    lake_stats = parquet_stats(lake / "events")
    return {"seconds": out["seconds"], "wall": r.wall, "cpu": r.cpu, "peak_rss_mib": r.maxrss_mib, "rows": out["rows"],
            "distinct_keys": out["distinct_keys"], "lake_bytes": lake_stats["bytes"], "files": lake_stats["files"]}


def duckdb_baseline_rss():
    code = "import duckdb; duckdb.connect().execute('SELECT 1').fetchall()"
    return run_measured([sys.executable, "-c", code]).check("duckdb baseline").maxrss_mib


# ---------------------------------------------------------------------------
# Queries


def duckdb_session(lake, temp):
    """One DuckDB connection with `events`, `action_catalog` and the views from sql/."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads()}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET temp_directory = {sql_str(temp)}")
    glob = sql_str(str(lake / "events") + "/**/*.parquet")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet({glob}, hive_partitioning = true, "
                "hive_types = {'tenant_id': VARCHAR, 'day': DATE})")
    con.execute((REPO / "sql" / "action_catalog.sql").read_text())
    # auditlake's session view of each tenant's clock; no rules here, so every tenant is on UTC.
    con.execute("CREATE VIEW events_local AS SELECT *, CAST(time AS TIMESTAMP) AS local_time FROM events")
    categories = catalog_categories(con)
    for name in VIEW_FILES:
        # A view DuckDB runs faster in another form of the same rows has it under benches/duckdb/.
        own = REPO / "benches" / "duckdb" / f"{name}.sql"
        src = own if own.exists() else REPO / "sql" / "views" / f"{name}.sql"
        con.execute(expand_categories(to_duckdb(src.read_text()), categories))
    return con


def catalog_categories(con):
    """{category: {vendor: [actions]}} of the action catalog, in its order."""
    out = {}
    for category, vendor, action in con.execute("SELECT category, vendor, action FROM action_catalog").fetchall():
        out.setdefault(category, {}).setdefault(vendor, []).append(action)
    return out


def expand_categories(sql, categories):
    """`{category:NAME}` spelled out as auditlake's session does (src/query/categories.rs):
    the catalog's rows for NAME as a predicate on vendor and action."""
    def spell(m):
        vendors = categories[m.group(1)]
        arms = [f"(vendor = {sql_str(v)} AND action IN ({', '.join(sql_str(a) for a in acts)}))"
                for v, acts in sorted(vendors.items())]
        return "(" + " OR ".join(arms) + ")"
    sql = re.sub(r"\{category:([^}]*)\}", spell, sql)
    # The per-tenant marks (src/query/per_tenant.rs) in their general form: DuckDB groups on
    # the tenant as it is.
    sql = re.sub(r"\{tenant:([^}]*)\}", lambda m: m.group(1).strip(), sql)
    return re.sub(r"\{tenant_rows:([^}]*)\}", "true", sql)


def duckdb_fresh_child(p):
    """Runs in a child process: a new DuckDB database, the views, one statement; prints
    {"seconds", "rows"} timed from after the import (DuckDB's CLI would not pay for Python)."""
    import duckdb  # noqa: F401  (imported before the clock starts)

    started = time.perf_counter()
    con = duckdb_session(Path(p["lake"]), p["temp"])
    out = fetch_arrow(con.sql(p["sql"]))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": result_rows(p["name"], out)}))


def duckdb_fresh_queries(lake, stmts, reps, work):
    params = work / "duckdb-fresh.json"

    def once(name, sql):
        params.write_text(json.dumps({"lake": str(lake), "temp": str(work / "duckdb-tmp"),
                                      "sql": sql, "name": name}))
        r = run_measured([sys.executable, __file__, "--duckdb-fresh-child", params]).check("duckdb fresh")
        out = json.loads(r.stdout.strip().splitlines()[-1])
        return out["seconds"], out["rows"]

    return repeat_each(stmts, reps, once)


def auditlake_fresh_queries(binary, lake, stmts, reps):
    """Each statement in its own `auditlake query` process, R times: the whole process timed."""
    def once(name, sql):
        r = run_measured([binary, "query", "--lake", lake, "--format", "csv", sql]).check("auditlake query")
        lines = r.stdout.strip().splitlines()
        return r.wall, len(lines) - 1 if name == "point_lookup" else int(lines[1].split(",")[0])

    return repeat_each(stmts, reps, once)


def select_star_csv(binary, lake):
    """`SELECT * FROM events` streamed to CSV (thrown away): peak RSS and time."""
    r = run_measured([binary, "query", "--lake", lake, "--format", "csv", "SELECT * FROM events"],
                     discard_stdout=True).check("SELECT * to CSV")
    return {"seconds": round(r.wall, 3), "peak_rss_mib": round(r.maxrss_mib, 1)}


def to_duckdb(sql):
    """DataFusion SQL of the view files -> DuckDB. date_bin's default origin is the epoch,
    time_bucket's is 2000-01-03: both whole days, so 10-minute buckets are the same.
    DataFusion's ordered aggregate first_value(x ORDER BY ...) is DuckDB's first(x ORDER BY ...).
    arrow_cast(x, 'Utf8') (a copy of a string view, key_first_use) is a VARCHAR cast, a no-op."""
    sql = re.sub(r"\bdate_bin\s*\(", "time_bucket(", sql)
    sql = re.sub(r"\barrow_cast\s*\(\s*([\w.]+)\s*,\s*'Utf8'\s*\)", r"CAST(\1 AS VARCHAR)", sql)
    return re.sub(r"\bfirst_value\s*\(", "first(", sql)


def pick_ouid(con):
    """A key that exists in the lake, with about ten events (a needle, not a haystack)."""
    rows = con.execute("SELECT ouid, count(*) AS n FROM events WHERE ouid IS NOT NULL "
                       "GROUP BY ouid ORDER BY abs(count(*) - 10), ouid LIMIT 1").fetchall()
    if not rows:
        raise StepFailed("no ouid in the lake for the point lookup")
    return rows[0][0]


def statements(ouid):
    stmts = [(v, f"SELECT count(*) AS n, {', '.join(f'count({c})' for c in VIEW_COLUMNS[v])} FROM {v}")
             for v in VIEWS]
    stmts.append(("point_lookup", f"SELECT * FROM events WHERE ouid = {sql_str(ouid)}"))
    return stmts


TIMING = re.compile(r"^(\d+) rows? in ([0-9.]+)s$")


def auditlake_queries(binary, lake, stmts, reps, work, extra=()):
    """All statements, R times each, in one `auditlake repl` session (with `extra` arguments,
    e.g. --cluster); times as the REPL reports them."""
    script = ["\\format csv"]
    for name, sql in stmts:
        for i in range(reps):
            script.append(f"SELECT 'BENCH:{name}:{i}' AS bench_marker;")
            script.append(sql + ";")
    script.append("\\q")
    env = dict(os.environ, AUDITLAKE_HISTORY=str(work / ".repl_history"))
    r = run_measured([binary, "repl", "--lake", lake, *extra], stdin_text="\n".join(script) + "\n", env=env)
    r.check("auditlake repl")
    runs = parse_repl(r.stdout)
    results = {}
    for name, sql in stmts:
        got = [runs.get(f"{name}:{i}") for i in range(reps)]
        if None in got:
            err = " ".join(r.stderr.split())[:300]
            raise StepFailed(f"auditlake repl: no result for {name}: {err}")
        results[name] = summarize([g[1] for g in got], got[0][0] if name == "point_lookup" else got[0][2])
    return results


def parse_repl(stdout):
    """{'name:i': (rows, seconds, last value line)} from the REPL's csv output and timing lines."""
    runs, current, marker_timing_pending, prev = {}, None, False, None
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("BENCH:"):
            current, marker_timing_pending = line[len("BENCH:"):], True
            continue
        m = TIMING.match(line)
        if m:
            if marker_timing_pending:
                marker_timing_pending = False  # the marker statement's own timing line
            elif current is not None:
                first = prev.split(",")[0] if prev else ""
                value = int(first) if first.isdigit() else None
                runs[current] = (int(m.group(1)), float(m.group(2)), value)
                current = None
        prev = line
    return runs


def repeat_each(stmts, reps, once):
    """Runs `once(name, sql) -> (seconds, rows)` R times per statement; medians per name."""
    results = {}
    for name, sql in stmts:
        runs = [once(name, sql) for _ in range(reps)]
        results[name] = summarize([t for t, _ in runs], runs[-1][1])
    return results


def result_rows(name, table):
    """What a statement returned, as both engines report it: the lookup's row count, else the count."""
    return table.num_rows if name == "point_lookup" else table.column(0)[0].as_py()


def duckdb_queries(con, stmts, reps):
    def once(name, sql):
        started = time.perf_counter()
        out = fetch_arrow(con.sql(sql))  # run and materialised as Arrow, like auditlake's batches
        return time.perf_counter() - started, result_rows(name, out)

    return repeat_each(stmts, reps, once)


def fetch_arrow(relation):
    """Runs a relation, its whole result as a pyarrow Table (the name differs across DuckDB versions)."""
    for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        if hasattr(relation, name):
            return getattr(relation, name)()
    raise StepFailed("this duckdb has no way to fetch an Arrow table")


def median_run(runs):
    """Of one conversion's runs (None where a run failed), the one with the median seconds,
    with every run's seconds beside it; None when none succeeded."""
    done = [r for r in runs if r]
    if not done:
        return None
    mid = sorted(done, key=lambda r: r["seconds"])[(len(done) - 1) // 2]
    return dict(mid, runs_s=[round(r["seconds"], 3) for r in done])


def summarize(seconds, rows):
    return {"median_ms": round(statistics.median(seconds) * 1000, 3),
            "runs_ms": [round(s * 1000, 3) for s in seconds], "rows": rows}


def lake_fingerprint(con, lake):
    """Rows, distinct rows and the xor of the distinct rows' hashes of a lake (all columns)."""
    cols = ("time, tenant_id, day, vendor, source, resource_id, actor_id, action, status, outcome, "
            "trace_id, client_ip, hsm_id, part_id, role, ouid, meta, extra")
    glob = sql_str(str(lake / "events") + "/**/*.parquet")
    rows, distinct, xor = con.execute(
        f"SELECT count(*), count(DISTINCT h), bit_xor(DISTINCT h) FROM (SELECT hash({cols}) AS h "
        f"FROM read_parquet({glob}, hive_partitioning = true, "
        "hive_types = {'tenant_id': VARCHAR, 'day': DATE}))").fetchall()[0]
    return {"rows": rows, "distinct_rows": distinct, "hash_xor": str(xor)}


def verify_lakes(con, ours, theirs):
    """Whether both lakes hold the same set of rows (DuckDB's duplicates collapse), by hashing every row."""
    a, d = lake_fingerprint(con, ours), lake_fingerprint(con, theirs)
    same = a["rows"] == a["distinct_rows"] and (a["distinct_rows"], a["hash_xor"]) == (d["distinct_rows"], d["hash_xor"])
    return {"same_rows": same, "auditlake": a, "duckdb": d}


# ---------------------------------------------------------------------------
# Report


def ratio(better_if_higher, a, d):
    """> 1 means auditlake is better."""
    if a is None or d is None or a == 0 or d == 0:
        return None
    return a / d if better_if_higher else d / a


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return f"{v:,}{unit}"
    if abs(v) >= 100:
        return f"{v:,.0f}{unit}"
    return f"{v:.3g}{unit}" if abs(v) < 1 else f"{v:.2f}{unit}"


def table_rows(res):
    """[(metric, auditlake, duckdb, ratio)] for the printed table and the JSON."""
    rows = []
    if "convert" not in res:  # --queries-only
        return rows + query_rows(res)
    a = res.get("convert", {}).get("auditlake") or {}
    d = res.get("convert", {}).get("duckdb") or {}
    mib = 1 << 20
    rec = a.get("records_read")
    a_rate = rec / a["seconds"] if rec and a.get("seconds") else None
    d_rate = rec / d["seconds"] if rec and d.get("seconds") else None
    rows += [
        ("convert: records read", rec, rec, None),
        ("convert: rows in lake (duckdb: no dedup)", a.get("written"), d.get("rows"), None),
        ("convert: seconds (in engine)", a.get("seconds"), d.get("seconds"),
         ratio(False, a.get("seconds"), d.get("seconds"))),
        ("convert: wall seconds (whole process)", a.get("wall"), d.get("wall"), ratio(False, a.get("wall"), d.get("wall"))),
        ("convert: events/s", a_rate, d_rate, ratio(True, a_rate, d_rate)),
        ("convert: peak RSS MiB", a.get("peak_rss_mib"), d.get("peak_rss_mib"),
         ratio(False, a.get("peak_rss_mib"), d.get("peak_rss_mib"))),
        ("lake MiB", a["lake_bytes"] / mib if a.get("lake_bytes") is not None else None,
         d["lake_bytes"] / mib if d.get("lake_bytes") is not None else None,
         ratio(False, a.get("lake_bytes"), d.get("lake_bytes"))),
        ("lake files", a.get("files"), d.get("files"), None),
    ]
    for key, label in (("one_export", "one export"), ("one_line", "one export, one line")):
        oa = (res.get(key) or {}).get("auditlake") or {}
        od = (res.get(key) or {}).get("duckdb") or {}
        n = oa.get("records_read")
        ra = n / oa["seconds"] if n and oa.get("seconds") else None
        rd = n / od["seconds"] if n and od.get("seconds") else None
        busy = lambda x: x["cpu"] / x["wall"] if x.get("cpu") and x.get("wall") else None
        rows += [
            (f"{label}: records read", n, n, None),
            (f"{label}: events/s", ra, rd, ratio(True, ra, rd)),
            (f"{label}: cores busy (cpu s / wall s)", busy(oa), busy(od), None),
            (f"{label}: peak RSS MiB", oa.get("peak_rss_mib"), od.get("peak_rss_mib"),
             ratio(False, oa.get("peak_rss_mib"), od.get("peak_rss_mib"))),
        ]
    inflate = res.get("inflate") or {}
    if "seconds" in inflate:
        rows.append(("inflate floor seconds (auditlake inflate)", inflate["seconds"], None, None))
        rows.append(("auditlake convert / inflate floor", a["seconds"] / inflate["seconds"] if a.get("seconds") else None,
                     None, None))
    else:
        rows.append(("inflate floor seconds", "skipped" if "skipped" in inflate else "failed", None, None))
    return rows + query_rows(res)


def query_rows(res):
    rows = []
    for mode, label in (("queries", "session"), ("fresh", "fresh process")):
        for name, q in (res.get(mode) or {}).items():
            qa, qd = q.get("auditlake") or {}, q.get("duckdb") or {}
            what = name if name != "point_lookup" else "point lookup (ouid)"
            rows.append((f"{label} ms: {what}", qa.get("median_ms"), qd.get("median_ms"),
                         ratio(False, qa.get("median_ms"), qd.get("median_ms"))))
    star = res.get("select_star") or {}
    if star:
        rows.append(("SELECT * to CSV: peak RSS MiB", star.get("peak_rss_mib"), None, None))
        rows.append(("SELECT * to CSV: seconds", star.get("seconds"), None, None))
    return rows


def target(metric):
    """Issue 27's target ratio for a query row (None for other rows)."""
    if metric.startswith("session ms: point lookup"):
        return 3.0
    if metric.startswith("session ms:"):
        return 1.5
    if metric.startswith("fresh process ms:"):
        return 1.0
    return None


def print_table(top):
    """One table, a column group per shape; a query row below its target is marked '<'."""
    m, p = top["machine"], top["params"]
    shapes = list(top["shapes"])
    print(f"\nauditlake vs DuckDB — {p['events']:,} events per shape, seed {SEED}, "
          f"{p['reps']} rep(s) per query (median)")
    for name in shapes:
        sh = SHAPES[name]
        desc = "".join([", office hours in 4 time zones" if sh["zones"] else ", office hours in UTC",
                        f", one export in {sh['one_line_every']} on one line" if sh["one_line_every"] else ""])
        print(f"  {name}: {sh['tenants']} tenants{desc}")
    print(f"machine: {m['nproc']} cpus ({m['cpu_model']}), {m['mem_total_gib']} GiB; "
          f"{m['auditlake']}, duckdb {m['duckdb']}")
    print("ratio > 1 means auditlake is better: times, memory, bytes = duckdb / auditlake; "
          "events/s = auditlake / duckdb; '<' marks a query below its target (session views 1.5x, "
          "session lookup 3x, fresh process 1x)\n")
    metrics = []
    for name in shapes:
        for r in top["shapes"][name].get("table") or []:
            if r[0] not in metrics:
                metrics.append(r[0])
    header = ["metric"]
    for name in shapes:
        header += [f"{name}: auditlake", "duckdb", "ratio"]
    rows = []
    for metric in metrics:
        row = [metric]
        for name in shapes:
            got = {r[0]: r for r in top["shapes"][name].get("table") or []}.get(metric)
            if got is None:
                row += ["", "", ""]
                continue
            _, a, d, r = got
            t = target(metric)
            mark = "<" if t is not None and r is not None and r < t else ""
            row += [fmt(a), fmt(d), (fmt(r, "x") + mark) if r is not None else ""]
        rows.append(row)
    c = top.get("cloudhsm") or {}
    if c.get("seconds"):
        for label, v in (("cloudhsm year: records read", c.get("records_read")),
                         ("cloudhsm year: events/s", c["records_read"] / c["seconds"]),
                         ("cloudhsm year: cores busy", c["cpu"] / c["wall"] if c.get("cpu") else None),
                         ("cloudhsm year: peak RSS MiB", c.get("peak_rss_mib")),
                         ("cloudhsm year: convert / inflate floor",
                          c["seconds"] / c["inflate_seconds"] if c.get("inflate_seconds") else None)):
            rows.append([label, fmt(v)] + [""] * (len(header) - 2))
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join([str(r[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(r[1:], widths[1:])])
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
    for name in shapes:
        notes = top["shapes"][name].get("notes") or []
        if notes:
            print(f"\nnotes ({name}):")
            for n in notes:
                print(f"  - {n}")
    if top.get("errors"):
        print("\nFAILED steps:")
        for e in top["errors"]:
            print(f"  - {e}")


# ---------------------------------------------------------------------------
# Main


def require_deps():
    try:
        import duckdb  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as e:
        sys.exit(f"compare.py needs duckdb and pyarrow ({e}).\n"
                 "Run it through benches/run.sh, which makes a virtualenv under target/bench-venv "
                 "with both, builds the release binary and passes your arguments on.")


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Benchmark auditlake against DuckDB (see the docstring).")
    ap.add_argument("--events", type=int, help="events to generate (default 10000000; --smoke: 20000)")
    ap.add_argument("--shapes", default="standard,zones",
                    help="lake shapes to measure, comma-separated (default standard,zones): standard = 3 "
                         "tenants in UTC; zones = 4 tenants in 4 time zones, one export in 3 on one line")
    ap.add_argument("--queries-only", action="store_true",
                    help="only the queries (session and fresh process) and the streamed SELECT *: "
                         "reuses each shape's auditlake lake (converting it if missing), no DuckDB convert")
    ap.add_argument("--convert-only", action="store_true",
                    help="only the conversions (the year, one export, one line), the inflate floor and "
                         "the verify step: no queries")
    ap.add_argument("--cloudhsm-events", type=int, default=0, metavar="N",
                    help="also convert a generated AWS CloudHSM year of N events (auditlake only: the "
                         "harness has no DuckDB reading of CloudHSM's text entries); 0: skip")
    ap.add_argument("--reps", type=int, help="runs per query and per one-export conversion, median reported (default 5; --smoke: 1)")
    ap.add_argument("--binary", type=Path, default=REPO / "target" / "release" / "auditlake")
    ap.add_argument("--work", type=Path, default=REPO / "target" / "bench",
                    help="data cache, lakes and results (default target/bench)")
    ap.add_argument("--json", type=Path, help="results as JSON (default WORK/results-<events>.json)")
    ap.add_argument("--smoke", action="store_true", help="tiny run for CI; checks that all steps work")
    ap.add_argument("--no-verify", action="store_true", help="skip comparing the two lakes row by row")
    ap.add_argument("--duckdb-convert-child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--one-line-child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--duckdb-fresh-child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.events is None:
        args.events = SMOKE_EVENTS if args.smoke else 10_000_000
    if args.reps is None:
        args.reps = SMOKE_REPS if args.smoke else 5
    args.binary, args.work = args.binary.resolve(), args.work.resolve()
    args.json = (args.json or args.work / f"results-{args.events}.json").resolve()
    if args.convert_only and args.queries_only:
        ap.error("--convert-only and --queries-only exclude each other")
    args.shapes = [x.strip() for x in args.shapes.split(",") if x.strip()]
    unknown = [x for x in args.shapes if x not in SHAPES]
    if unknown or not args.shapes:
        ap.error(f"--shapes: unknown shape(s) {unknown}; known: {', '.join(SHAPES)}")
    return args


class Bench:
    """Runs steps in order, keeping going after a failure where later steps do not depend on it.
    Each shape's results go to res["shapes"][name]; `self.res` is the shape being measured."""

    def __init__(self, args):
        self.args = args
        self.top = {"params": {"events": args.events, "shapes": args.shapes, "reps": args.reps,
                               "queries_only": args.queries_only, "convert_only": args.convert_only,
                               "cloudhsm_events": args.cloudhsm_events,
                               "seed": SEED, "binary": str(args.binary), "work": str(args.work),
                               "threads": threads()},
                    "shapes": {}, "notes": [], "errors": []}
        self.res = self.top

    def step(self, name, fn, *a):
        log(name)
        try:
            return fn(*a)
        except (StepFailed, subprocess.SubprocessError, OSError, json.JSONDecodeError, KeyError) as e:
            self.res["errors"].append(f"{name}: {e}")
            log(f"FAILED {name}: {e}")
        except Exception as e:  # duckdb errors and anything unexpected: report, carry on
            self.res["errors"].append(f"{name}: {type(e).__name__}: {e}")
            log(f"FAILED {name}: {type(e).__name__}: {e}")
        return None

    def run(self):
        args = self.args
        args.work.mkdir(parents=True, exist_ok=True)
        self.top["machine"] = machine_info(args.binary)
        for name in args.shapes:
            self.res = {"shape": dict(SHAPES[name]), "notes": [], "errors": []}
            self.top["shapes"][name] = self.res
            log(f"== shape {name}")
            self.run_shape(SHAPES[name])
            self.res["table"] = table_rows(self.res)
        self.res = self.top
        if args.cloudhsm_events:
            self.top["cloudhsm"] = self.step("cloudhsm: generate (cached) and convert a year, auditlake only",
                                             cloudhsm_year, args.binary, args.work, args.cloudhsm_events, 3)
        self.top["errors"] += [f"{n}: {e}" for n, r in self.top["shapes"].items() for e in r["errors"]]

    def run_shape(self, shape):
        args, res = self.args, self.res
        work, binary = args.work, args.binary
        data = self.step("data: generate and unzip (cached, untimed)", prepare_data, binary, work, args.events,
                         shape["tenants"], shape["zones"], shape["one_line_every"])
        if data is None:
            return
        res["data"] = {k: v for k, v in data.items() if k not in ("exports", "json_files")}
        key = Path(data["dir"]).name
        ours, theirs = work / "lakes" / f"auditlake-{key}", work / "lakes" / f"duckdb-{key}"
        if args.queries_only:
            if not (ours / ".bench-complete").exists():
                self.step("convert: auditlake (the lake is missing)", auditlake_convert, binary, data["exports"], ours)
                (ours / ".bench-complete").write_text("")
            self.queries(ours, None)
            return

        self.step("warm the page cache: read every input once (untimed)", warm_cache,
                  sorted(data["exports"].glob("*.zip")) + data["json_files"])
        res["inflate"] = self.step("inflate floor: auditlake inflate", inflate_floor, binary, data["exports"]) \
            or {"error": "failed"}
        if "skipped" in res["inflate"]:
            res["notes"].append(f"inflate floor skipped: {res['inflate']['skipped']}.")
        a = self.step("convert: auditlake", auditlake_convert, binary, data["exports"], ours)
        if a is not None:
            (ours / ".bench-complete").write_text("")
        d = self.step("convert: duckdb (child process)", duckdb_convert, data, theirs, work)
        res["convert"] = {"auditlake": a, "duckdb": d}
        self.one_export(data)
        baseline = self.step("duckdb baseline RSS (python + duckdb, idle)", duckdb_baseline_rss)
        if d:
            res["notes"].append(
                f"DuckDB does not deduplicate overlapping exports: its lake has {d['rows']:,} rows "
                f"({d['distinct_keys']:,} distinct (tenant_id, trace_id)); auditlake wrote "
                f"{a['written']:,} and dropped {a['duplicates']:,} duplicates." if a else
                f"DuckDB lake: {d['rows']:,} rows, {d['distinct_keys']:,} distinct (tenant_id, trace_id).")
        if baseline is not None:
            res["notes"].append(f"DuckDB peak RSS includes its Python child: idle python + duckdb is "
                                f"{baseline:.0f} MiB.")
        res["notes"].append("convert seconds: auditlake's own summary (whole run) vs DuckDB's COPY statement; "
                            "DuckDB reads pre-unzipped .json, auditlake reads the zips.")
        if a is None:
            res["errors"].append("queries: skipped (no auditlake lake)")
        else:
            self.queries(ours, theirs if d else None)

    def one_export(self, data):
        """Convert one monthly export, as a daily or monthly job does, and the same records
        written on one single line; each into a fresh lake, both engines."""
        args, res = self.args, self.res
        one = self.step("one export: pick it, write its one-line twin (cached, untimed)", one_export, data, args.work)
        if one is None:
            return
        self.step("warm the page cache: the one export (untimed)", warm_cache,
                  [one["zip"], one["one_line_zip"]] + one["json_files"] + one["one_line_json"])
        # A conversion of one export takes well under a second here, and this VM moves
        # single runs by 20% either way: each is run R times, interleaved (per line, one
        # line, both engines, then again), and the run with the median seconds is reported.
        lakes = args.work / "lakes"
        kinds = (("one_export", one["zip"], one["json_files"]),
                 ("one_line", one["one_line_zip"], one["one_line_json"]))
        runs = {(key, engine): [] for key, _, _ in kinds for engine in ("auditlake", "duckdb")}
        for rep in range(args.reps):
            for key, zip_file, jsons in kinds:
                a = self.step(f"{key}: auditlake convert ({rep + 1} of {args.reps})", auditlake_convert,
                              args.binary, zip_file, lakes / f"auditlake-{key}")
                d = self.step(f"{key}: duckdb convert ({rep + 1} of {args.reps})", duckdb_convert,
                              {"json_files": jsons}, lakes / f"duckdb-{key}", args.work)
                runs[(key, "auditlake")].append(a)
                runs[(key, "duckdb")].append(d)
        for key, zip_file, _ in kinds:
            res[key] = {"file": str(zip_file), "auditlake": median_run(runs[(key, "auditlake")]),
                        "duckdb": median_run(runs[(key, "duckdb")])}
        res["notes"].append(f"one export: {one['zip'].name}, the largest; 'one line': the same records "
                            f"re-written with the whole JSON array on a single line; each the run with the "
                            f"median seconds of {args.reps}, interleaved.")

    def queries(self, ours, theirs):
        args, res = self.args, self.res
        con = self.step("queries: duckdb session over the auditlake lake", duckdb_session, ours,
                        args.work / "duckdb-tmp")
        if con is None:
            return
        if not args.convert_only:
            self.query_steps(con, ours)
        self.verify(con, ours, theirs)

    def query_steps(self, con, ours):
        args, res = self.args, self.res
        ouid = self.step("queries: pick an ouid for the point lookup", pick_ouid, con)
        if ouid is None:
            return
        stmts = statements(ouid)
        qa = self.step(f"queries: auditlake repl, {args.reps} rep(s)", auditlake_queries,
                       args.binary, ours, stmts, args.reps, args.work) or {}
        qd = self.step(f"queries: duckdb, {args.reps} rep(s)", duckdb_queries, con, stmts, args.reps) or {}
        fa = self.step(f"queries: auditlake query, a fresh process each, {args.reps} rep(s)",
                       auditlake_fresh_queries, args.binary, ours, stmts, args.reps) or {}
        fd = self.step(f"queries: duckdb, a fresh process each, {args.reps} rep(s)",
                       duckdb_fresh_queries, ours, stmts, args.reps, args.work) or {}
        res["queries"] = {name: {"sql": sql, "auditlake": qa.get(name), "duckdb": qd.get(name)} for name, sql in stmts}
        res["fresh"] = {name: {"sql": sql, "auditlake": fa.get(name), "duckdb": fd.get(name)} for name, sql in stmts}
        for mode in ("queries", "fresh"):
            for name, q in res[mode].items():
                counts = {q[e]["rows"] for e in ("auditlake", "duckdb") if q[e]}
                if len(counts) > 1:
                    res["errors"].append(f"query {name} ({mode}): auditlake returns {q['auditlake']['rows']} rows, "
                                         f"duckdb {q['duckdb']['rows']}: the two engines disagree")
        res["select_star"] = self.step("streamed SELECT * FROM events to CSV (peak RSS)",
                                       select_star_csv, args.binary, ours)
        counts = ", ".join(f"{n} {q['auditlake']['rows']}" for n, q in res["queries"].items() if q["auditlake"])
        res["notes"].append(f"point lookup ouid = {ouid}; result rows per query (both engines agree "
                            f"unless listed under FAILED): {counts}.")
        res["notes"].append("session: auditlake as its REPL reports (plan + run + print), DuckDB execute + fetch "
                            "as an Arrow table on one connection, both over the auditlake lake, setup untimed. "
                            "fresh: auditlake the whole `auditlake query` process; DuckDB a new database "
                            "(views created, query run and fetched) in a child Python, timed from after "
                            "`import duckdb`.")

    def verify(self, con, ours, theirs):
        args, res = self.args, self.res
        if theirs is not None and not args.no_verify:
            v = self.step("verify: same rows in both lakes (hash of every row)", verify_lakes, con, ours, theirs)
            if v is not None:
                res["verify"] = v
                if not v["same_rows"]:
                    res["errors"].append(f"verify: the lakes hold different rows: {v}")
                else:
                    res["notes"].append("verify: both lakes hold the same set of rows (DuckDB's extras are "
                                        "exact duplicates).")


def main(argv):
    args = parse_args(argv)
    if args.duckdb_convert_child:
        duckdb_convert_child(json.loads(args.duckdb_convert_child.read_text()))
        return 0
    if args.one_line_child:
        one_line_child(json.loads(args.one_line_child.read_text()))
        return 0
    if args.duckdb_fresh_child:
        duckdb_fresh_child(json.loads(args.duckdb_fresh_child.read_text()))
        return 0
    require_deps()
    if not args.binary.is_file():
        sys.exit(f"no auditlake binary at {args.binary}: build it (cargo build --release) or use benches/run.sh")
    bench = Bench(args)
    bench.run()
    top = bench.top
    print_table(top)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    for r in top["shapes"].values():
        r["table"] = [{"metric": m, "auditlake": a, "duckdb": d, "ratio": x, "target": target(m)}
                      for m, a, d, x in r.get("table") or []]
    args.json.write_text(json.dumps(top, indent=2, default=str) + "\n")
    log(f"results written to {args.json}")
    return 1 if top["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
