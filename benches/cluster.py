#!/usr/bin/env python3
"""The standard views on a loopback Ballista cluster against the local session, same lake.

Usage:
  python3 benches/cluster.py --lake LAKE [--binary target/release/auditlake] [--reps 3]
                             [--local-binary B] [--executors 2] [--vcores 1]

Starts the stock `ballista-scheduler` and N `ballista-executor`s found on PATH
(`cargo install --locked ballista-scheduler@55.0.0 ballista-executor@55.0.0`) on
127.0.0.1, each executor with `--vcores` task slots, then runs compare.py's statements
(`SELECT count(*) FROM <view>` for every standard view, and the point lookup of one ouid)
R times each in one `auditlake repl` session: once local, once with `--cluster` (every
build has Ballista's client). Prints medians, the ratio cluster/local,
and whether both gave the same answer; exits 1 if any answer differs.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import REPO, StepFailed, auditlake_queries, log, run_measured, statements  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StepFailed(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise StepFailed(f"{what} did not listen on {port} within {timeout} s")


def start_cluster(executors, vcores, logs):
    """The stock scheduler and executors, as the README starts them; returns (url, processes)."""
    for tool in ("ballista-scheduler", "ballista-executor"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not on PATH: cargo install --locked ballista-scheduler@55.0.0 "
                     "ballista-executor@55.0.0")
    procs = []
    port = free_port()
    sched = subprocess.Popen(["ballista-scheduler", "--bind-host", "127.0.0.1", "--bind-port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=open(logs / "scheduler.log", "w"))
    procs.append(sched)
    wait_port(port, sched, "ballista-scheduler")
    for i in range(executors):
        flight, grpc, health = free_port(), free_port(), free_port()
        ex = subprocess.Popen(
            ["ballista-executor", "--bind-host", "127.0.0.1", "--external-host", "127.0.0.1",
             "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port),
             "--bind-port", str(flight), "--bind-grpc-port", str(grpc),
             "--bind-health-port", str(health), "--vcores", str(vcores),
             "--work-dir", str(logs / f"executor{i}")],
            stdout=subprocess.DEVNULL, stderr=open(logs / f"executor{i}.log", "w"))
        procs.append(ex)
        wait_port(flight, ex, f"ballista-executor {i}")
    time.sleep(2)  # executors register with the scheduler on their first heartbeat
    return f"df://127.0.0.1:{port}", procs


def pick_ouid(binary, lake):
    sql = ("SELECT ouid FROM events WHERE ouid IS NOT NULL GROUP BY ouid "
           "ORDER BY abs(count(*) - 10), ouid LIMIT 1")
    r = run_measured([binary, "query", "--lake", lake, "--format", "csv", sql]).check("pick ouid")
    lines = r.stdout.strip().splitlines()
    if len(lines) < 2:
        raise StepFailed("no ouid in the lake for the point lookup")
    return lines[1].strip('"')


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lake", required=True)
    p.add_argument("--binary", type=Path, default=REPO / "target" / "release" / "auditlake")
    p.add_argument("--local-binary", type=Path,
                   help="the binary for the local session (default: --binary; any release build)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--executors", type=int, default=2)
    p.add_argument("--vcores", type=int, default=1)
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="auditlake-cluster-bench-"))
    lake = os.path.abspath(args.lake)
    local_binary = args.local_binary or args.binary
    stmts = statements(pick_ouid(local_binary, lake))
    log("local session")
    local = auditlake_queries(local_binary, lake, stmts, args.reps, work)
    url, procs = start_cluster(args.executors, args.vcores, work)
    try:
        log(f"cluster session ({url}, {args.executors} executors x {args.vcores} vcores)")
        remote = auditlake_queries(args.binary, lake, stmts, args.reps, work, extra=("--cluster", url))
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
    print(f"| statement | rows or count | local median s | cluster median s | cluster/local | same answer |")
    print("|---|---:|---:|---:|---:|---|")
    differ = 0
    for name, _ in stmts:
        a, b = local[name], remote[name]
        same = a["rows"] == b["rows"]
        differ += not same
        print(f"| {name} | {a['rows']} | {a['median_ms'] / 1000:.3f} | {b['median_ms'] / 1000:.3f} | "
              f"{b['median_ms'] / a['median_ms']:.2f} | {'yes' if same else 'NO: ' + str(b['rows'])} |")
    shutil.rmtree(work, ignore_errors=True)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
