#!/usr/bin/env python3
"""The history step: do daily jobs and fresh queries cost the same in year seven as in
year one? (Issue "A lake that lives for years".)

Usage:
  python3 benches/history.py [--per-year N] [--years 7] [--tenants 4] [--reps 3]
                             [--binary PATH] [--work DIR] [--json OUT]

1. Data: `auditlake generate --months 12*Y+1` writes Y years and one month more of the
   same tenants (one world, fresh trace ids every month), cached under WORK/history/.
   The day to add is the second day of the extra month (the first overlaps the last
   month's exports), cut out of its exports into one JSON file (every tenant's records
   of that day) by a child process, so that this one stays small: a child's ru_maxrss
   starts from its parent's high-water mark.
2. Lakes: the first year converted into lake-1y; then the other years into a hard-linked
   copy of it, lake-Yy (lake files are never changed in place, so the copies share them).
3. Daily convert: the day into an empty lake, into a copy of lake-1y, into a copy of
   lake-Yy; wall seconds and peak RSS (the child's own ru_maxrss), median of --reps.
4. Fresh queries, each in a new `auditlake query` process: a point lookup of one `ouid`,
   a one-month count, `SELECT count(*) FROM failed_logins`; median of --reps.
5. Lake bytes: Parquet files, the trace index, the ledger, for each lake.

Prints a table (ratios: year Y over year 1; the daily convert also over the empty lake)
and writes everything as JSON. Timings only; nothing is asserted.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import REPO, log, run_measured  # noqa: E402


def generate(binary, data, per_year, years, tenants):
    stamp = data / ".complete"
    exports = data / "exports"
    if stamp.exists():
        log(f"using cached data in {data}")
        return exports
    shutil.rmtree(data, ignore_errors=True)
    months = 12 * years + 1
    events = per_year * months // 12
    log(f"generating {events} events over {months} months for {tenants} tenants")
    run_measured([binary, "generate", "--output", exports, "--events", events, "--tenants",
                  tenants, "--months", months, "--start", "2025-01", "--seed", 1]).check("generate")
    stamp.write_text("{}")
    return exports


def month_of(z):
    return z.stem[-7:]  # ...-YYYY-MM


def cut_day(exports, month, out):
    """Every record of the month's second day, from the month's exports, as one JSON array
    (in a child process); returns the file and its number of records."""
    count = out.with_suffix(".count")
    if not count.exists():
        run_measured([sys.executable, __file__, "--cut-child", exports, month, out]).check("cut the day")
    return out, int(count.read_text())


def cut_child(exports, month, out):
    day = f"{month}-02"
    recs = []
    for z in sorted(exports.glob(f"*-{month}.zip")):
        with zipfile.ZipFile(z) as zf:
            for m in zf.infolist():
                for r in json.loads(zf.read(m)):
                    if str(r.get("time", "")).startswith(day):
                        recs.append(r)
    out.write_text(json.dumps(recs))
    out.with_suffix(".count").write_text(str(len(recs)))
    log(f"{len(recs)} records of {day} in {out}")


def lookup_key(binary, lake, env=None):
    """The key the point lookups look up: the smallest `ouid`, the same every run."""
    return subprocess.run([binary, "query", "--lake", lake, "--format", "csv",
                           "SELECT min(ouid) AS ouid FROM events"], env=env,
                          capture_output=True, text=True, check=True).stdout.splitlines()[-1]


def convert(binary, inputs, lake):
    return run_measured([binary, "convert", *inputs, "--lake", lake, "--json", "-q"]).check("convert")


def copy_lake(src, dst):
    shutil.rmtree(dst, ignore_errors=True)
    if src is None:
        dst.mkdir(parents=True)
    else:
        subprocess.run(["cp", "-al", str(src), str(dst)], check=True)


def lake_bytes(lake):
    out = {"parquet": 0, "index": 0, "manifest": 0, "ledger": 0, "files": 0}
    for p in Path(lake).rglob("*"):
        if not p.is_file():
            continue
        rel = p.relative_to(lake).parts[0]
        if rel == "events":
            out["parquet"] += p.stat().st_size
            out["files"] += 1
        elif rel == "_index":
            out["index"] += p.stat().st_size
        elif rel == "_manifest":
            out["manifest"] += p.stat().st_size
        elif rel == "_ledger":
            out["ledger"] += p.stat().st_size
    return out


def median_run(fn, reps):
    runs = [fn() for _ in range(reps)]
    return {"seconds": statistics.median(r.wall for r in runs),
            "rss_mib": statistics.median(r.maxrss_mib for r in runs)}


def main(argv):
    if argv[:1] == ["--cut-child"]:
        return cut_child(Path(argv[1]), argv[2], Path(argv[3]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-year", type=int, default=2_500_000, help="events per year (default 2.5M)")
    ap.add_argument("--years", type=int, default=7)
    ap.add_argument("--tenants", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--binary", type=Path, default=REPO / "target" / "release" / "auditlake")
    ap.add_argument("--work", type=Path, default=REPO / "target" / "bench")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    binary, work = a.binary.resolve(), a.work.resolve()
    data = work / "history" / f"per-year-{a.per_year}_years-{a.years}_tenants-{a.tenants}"
    exports = generate(binary, data, a.per_year, a.years, a.tenants)
    zips = sorted(exports.glob("*.zip"))
    months = sorted({month_of(z) for z in zips})
    day, n_day = cut_day(exports, months[12 * a.years], data / "day2.json")

    lakes = work / "history" / "lakes"
    lake1, lakeY = lakes / "lake-1y", lakes / f"lake-{a.years}y"
    if not (lake1 / ".complete").exists():
        copy_lake(None, lake1)
        log("converting year 1")
        convert(binary, [z for z in zips if month_of(z) in months[:12]], lake1)
        (lake1 / ".complete").write_text("")
    if not (lakeY / ".complete").exists():
        copy_lake(lake1, lakeY)
        (lakeY / ".complete").unlink()
        log(f"converting years 2..{a.years}")
        for y in range(1, a.years):
            convert(binary, [z for z in zips if month_of(z) in months[12 * y:12 * (y + 1)]], lakeY)
        (lakeY / ".complete").write_text("")

    res = {"per_year": a.per_year, "years": a.years, "tenants": a.tenants, "day_records": n_day,
           "lakes": {"1y": lake_bytes(lake1), f"{a.years}y": lake_bytes(lakeY)}}
    scratch = lakes / "scratch"

    def daily(base):
        def once():
            copy_lake(base, scratch)
            return convert(binary, [day], scratch)
        return median_run(once, a.reps)

    log("daily convert")
    res["daily"] = {"empty": daily(None), "1y": daily(lake1), f"{a.years}y": daily(lakeY)}
    shutil.rmtree(scratch, ignore_errors=True)

    ouid = lookup_key(binary, lake1)
    last = months[12 * a.years - 1]
    queries = {
        "point lookup": f"SELECT count(*) FROM events WHERE ouid = '{ouid}'",
        "one month": f"SELECT count(*) FROM events WHERE time >= TIMESTAMP '{months[11]}-01T00:00:00Z' "
                     f"AND time < TIMESTAMP '{months[11]}-01T00:00:00Z' + INTERVAL '1 month'",
        "failed_logins": "SELECT count(*) FROM failed_logins",
    }
    res["queries"] = {}
    for name, sql in queries.items():
        log(f"fresh query: {name}")
        res["queries"][name] = {
            key: median_run(lambda lake=lake: run_measured(
                [binary, "query", "--lake", lake, "--format", "csv", sql]).check(name), a.reps)
            for key, lake in (("1y", lake1), (f"{a.years}y", lakeY))}
    res["last_month"] = last
    res["ouid"] = ouid
    res["ouid_files"] = {
        key: subprocess.run([binary, "query", "--lake", lake, "--format", "csv",
                             "SELECT count(DISTINCT concat(tenant_id, '/', CAST(day AS VARCHAR))) FROM events "
                             f"WHERE ouid = '{ouid}'"],
                            capture_output=True, text=True, check=True).stdout.splitlines()[-1]
        for key, lake in (("1y", lake1), (f"{a.years}y", lakeY))}

    Y = f"{a.years}y"
    print(f"\nHistory: {a.per_year:,} events a year, {a.tenants} tenants; the day adds {n_day:,} records\n")
    print(f"| job | empty lake | 1-year lake | {a.years}-year lake | {a.years}y / 1y | {a.years}y / empty |")
    print("|---|---:|---:|---:|---:|---:|")
    d = res["daily"]
    print(f"| daily convert, s | {d['empty']['seconds']:.2f} | {d['1y']['seconds']:.2f} | {d[Y]['seconds']:.2f} "
          f"| {d[Y]['seconds'] / d['1y']['seconds']:.2f}x | {d[Y]['seconds'] / d['empty']['seconds']:.2f}x |")
    print(f"| daily convert, RSS MiB | {d['empty']['rss_mib']:.0f} | {d['1y']['rss_mib']:.0f} | {d[Y]['rss_mib']:.0f} "
          f"| {d[Y]['rss_mib'] / d['1y']['rss_mib']:.2f}x | {d[Y]['rss_mib'] / d['empty']['rss_mib']:.2f}x |")
    for name, q in res["queries"].items():
        print(f"| {name} (fresh), s | | {q['1y']['seconds']:.3f} | {q[Y]['seconds']:.3f} "
              f"| {q[Y]['seconds'] / q['1y']['seconds']:.2f}x | |")
    print(f"\nthe point lookup's key {ouid} is in {res['ouid_files']['1y']} files of the 1-year lake "
          f"and {res['ouid_files'][Y]} of the {a.years}-year one")
    for key in ("1y", Y):
        b = res["lakes"][key]
        print(f"\nlake-{key}: {b['files']:,} Parquet files, {b['parquet'] / 2**20:,.1f} MiB; trace index "
              f"{b['index'] / 2**20:,.1f} MiB ({100 * b['index'] / max(b['parquet'], 1):.1f}% of the Parquet bytes); "
              f"manifest {b['manifest'] / 2**20:,.1f} MiB ({100 * b['manifest'] / max(b['parquet'], 1):.1f}%)")
    out = a.json or work / f"history-{a.per_year}-{a.years}.json"
    out.write_text(json.dumps(res, indent=2, default=str))
    log(f"results in {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
