#!/usr/bin/env python3
"""Object-store requests against lake age: a daily convert and fresh queries on an S3
lake (moto on loopback) of one year and of seven, counted from moto's request log.

Usage:
  python3 benches/requests.py [--per-year N] [--years 7] [--tenants 4]
                              [--moto PATH] [--binary PATH] [--work DIR]

moto_server comes from target/ci-venv (what .ci/run installs) unless --moto names one.
The data is benches/history.py's (same generator, smaller by default). Each request
moto serves is one line of its log; they are counted per kind (LIST, GET, HEAD, PUT,
DELETE, POST) for each command alone, with its wall time (one run: a second convert of
the same day would be all duplicates; moto is a Python server, so times are its, and
compare lake ages only). Nothing is asserted.
"""

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import REPO, log  # noqa: E402
from history import cut_day, generate, lookup_key, month_of  # noqa: E402

LINE = re.compile(r'"(GET|HEAD|PUT|DELETE|POST) (\S+) HTTP')
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours some status lines


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kind(method, target):
    if method == "GET" and ("list-type=" in target or "delimiter=" in target):
        return "LIST"
    return method


class Moto:
    def __init__(self, program, work):
        self.port = free_port()
        self.log = work / "moto.log"
        self.proc = subprocess.Popen([program, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/lake", method="PUT")
        urllib.request.urlopen(req).read()

    def env(self):
        e = dict(os.environ)
        e.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
                 AWS_ENDPOINT_URL=f"http://127.0.0.1:{self.port}", AWS_ALLOW_HTTP="true")
        return e

    def counted(self, argv):
        """Runs argv; returns the requests moto served meanwhile, per kind, and its
        wall time in seconds."""
        before = self.log.stat().st_size
        t0 = time.perf_counter()
        subprocess.run([str(a) for a in argv], env=self.env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - t0
        time.sleep(0.3)  # the log line of the last response
        with open(self.log) as f:
            f.seek(before)
            counts = {}
            for m in LINE.finditer(ANSI.sub("", f.read())):
                k = kind(m.group(1), m.group(2))
                counts[k] = counts.get(k, 0) + 1
        return counts, seconds

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-year", type=int, default=200_000)
    ap.add_argument("--years", type=int, default=7)
    ap.add_argument("--tenants", type=int, default=4)
    ap.add_argument("--moto", type=Path, default=REPO / "target" / "ci-venv" / "bin" / "moto_server")
    ap.add_argument("--binary", type=Path, default=REPO / "target" / "release" / "auditlake")
    ap.add_argument("--work", type=Path, default=REPO / "target" / "bench")
    a = ap.parse_args(argv)
    binary, work = a.binary.resolve(), a.work.resolve()
    data = work / "history" / f"per-year-{a.per_year}_years-{a.years}_tenants-{a.tenants}"
    exports = generate(binary, data, a.per_year, a.years, a.tenants)
    zips = sorted(exports.glob("*.zip"))
    months = sorted({month_of(z) for z in zips})
    day, n_day = cut_day(exports, months[12 * a.years], data / "day2.json")
    moto = Moto(a.moto, work)
    try:
        rows = []
        for years in (1, a.years):
            lake = f"s3://lake/y{years}"
            log(f"converting {years} year(s) into {lake}")
            for y in range(years):
                subprocess.run([binary, "convert", *[z for z in zips if month_of(z) in months[12 * y:12 * (y + 1)]],
                                "--lake", lake, "-q"], env=moto.env(), check=True)
            month = months[11]
            ouid = lookup_key(binary, lake, moto.env())
            for name, argv in [
                ("daily convert", [binary, "convert", day, "--lake", lake, "-q"]),
                ("point lookup (fresh)", [binary, "query", "--lake", lake, "--format", "csv",
                                          f"SELECT count(*) FROM events WHERE ouid = '{ouid}'"]),
                ("one month (fresh)", [binary, "query", "--lake", lake, "--format", "csv",
                                       f"SELECT count(*) FROM events WHERE time >= TIMESTAMP '{month}-01T00:00:00Z'"
                                       f" AND time < TIMESTAMP '{month}-01T00:00:00Z' + INTERVAL '1 month'"]),
                ("failed_logins (fresh)", [binary, "query", "--lake", lake, "--format", "csv",
                                           "SELECT count(*) FROM failed_logins"]),
            ]:
                rows.append((name, years, *moto.counted(argv)))
    finally:
        moto.stop()
    kinds = ["LIST", "GET", "HEAD", "PUT", "DELETE", "POST"]
    print(f"\nS3 requests (moto), {a.per_year:,} events a year, {a.tenants} tenants, a day of {n_day:,} records\n")
    print("| command | lake | " + " | ".join(kinds) + " | all | s |")
    print("|---|---|" + "---:|" * (len(kinds) + 2))
    for name, years, c, seconds in rows:
        print(f"| {name} | {years} y | " + " | ".join(str(c.get(k, 0)) for k in kinds)
              + f" | {sum(c.values())} | {seconds:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
