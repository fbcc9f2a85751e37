#!/usr/bin/env python3
"""A DPoD Audit Query API test server for auditlake's `fetch` tests (stdlib only).

It speaks the documented flow over TLS on loopback: an OAuth2 client-credentials
token (form body), POST <api>/v1/audit-log-exports with from/to (RFC 3339, whole
seconds) and filters, GET <api>/v1/audit-log-exports/{jobId} (ACTIVE, then
SUCCEEDED with a signed `location`, or FAILED), and the signed download on the same
server: an HMAC signature and an expiry in the query string, no auth header allowed,
Range requests answered with 206. The records served are read from export files
(zip of JSON arrays, gzip NDJSON, plain), one per (tenantID, traceID), and written
once to --records-out, the bytes of each record as served.

Faults are knobs in --faults (JSON), each counting from the server's start:
  token_ttl            seconds a token lives (expires_in), default 3600
  revoke_tokens_after  after this many authorised API calls, every token issued so
                       far is refused with 401 (once)
  create_errors        statuses answered to the first creates, e.g. [503, 500, 429]
  max_records          a window holding more records is refused as too large (400)
  polls_active         polls answered ACTIVE before SUCCEEDED (default 1)
  fail_jobs            job numbers (1 = the first created) that end FAILED
  cancel_jobs          job numbers that end CANCELLED
  expired_urls         the first N signed URLs handed out are expired already
  cut_downloads        the first N downloads stop halfway through the body
  no_range             ignore Range requests (answer the whole body again)
  format               "zip", "gzip" or "alternate" (default) per job

The first line on stdout is `port N`. --log gets one JSON line per request (method,
path without query, status, whether it carried Authorization, the JSON body of
creates), and `issued` lines naming every token and signature handed out, so tests
can look for them where they must not be.
"""

import argparse
import gzip
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import ssl
import sys
import threading
import time
import urllib.parse
import zipfile
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TIME_RE = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[ Tt](\d\d):(\d\d):(\d\d)(\.\d+)?( UTC|Z|z|[+-]\d\d:\d\d)$"
)
WINDOW_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
FILTERS = {
    "source": "source",
    "resourceId": "resourceID",
    "actorId": "actorID",
    "action": "action",
    "status": "status",
}


def record_time(text):
    """Seconds since the epoch (float) of a record's time, or None."""
    m = TIME_RE.match(text or "")
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    t = datetime(y, mo, d, h, mi, s, tzinfo=timezone.utc).timestamp()
    if m.group(7):
        t += float("0" + m.group(7))
    off = m.group(8)
    if off and off[0] in "+-":
        sign = 1 if off[0] == "+" else -1
        t -= sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    return t


def parse_window_time(text):
    if not isinstance(text, str) or not WINDOW_RE.match(text):
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def records_of(data):
    """The records of one member: a JSON array, or NDJSON."""
    text = data.decode("utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_exports(directory):
    out = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        raw = open(path, "rb").read()
        if raw.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                for member in sorted(z.namelist()):
                    if not member.endswith("/"):
                        out.extend(records_of(z.read(member)))
        elif raw.startswith(b"\x1f\x8b"):
            out.extend(records_of(gzip.decompress(raw)))
        else:
            out.extend(records_of(raw))
    seen = set()
    records = []
    for r in out:
        key = (r.get("tenantID"), r.get("traceID"))
        if r.get("traceID") is not None and key in seen:
            continue
        seen.add(key)
        t = record_time(r.get("time"))
        if t is None:
            continue
        records.append((t, r, json.dumps(r, separators=(",", ":"), ensure_ascii=False)))
    records.sort(key=lambda x: x[0])
    return records


class State:
    def __init__(self, args, faults, records):
        self.lock = threading.RLock()
        self.args = args
        self.faults = faults
        self.records = records
        self.key = secrets.token_bytes(32)
        self.tokens = {}  # token -> expiry
        self.api_calls = 0
        self.revoked = False
        self.creates = 0
        self.jobs = {}
        self.urls = 0
        self.downloads = 0
        self.log = open(args.log, "a", buffering=1) if args.log else None

    def note(self, **kv):
        if self.log:
            with self.lock:
                self.log.write(json.dumps(kv) + "\n")

    def sign(self, path, expires):
        return hmac.new(self.key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def export_body(lines, fmt, job_id):
    if fmt == "gzip":
        return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0), "ndjson.gz"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"audit-log-{job_id}.json", "[" + ",\n".join(lines) + "]\n")
    return buf.getvalue(), "zip"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dpod-test"

    def log_message(self, *a):
        pass

    @property
    def st(self):
        return self.server.state

    def send(self, status, body=b"", ctype="application/json", headers=None, cut=False):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if cut:
            self.send_header("Connection", "close")
        self.end_headers()
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        self.wfile.write(body)
        u = urllib.parse.urlsplit(self.path)
        self.st.note(
            m=self.command, path=u.path, status=status, auth="Authorization" in self.headers
        )

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def authorised(self):
        st = self.st
        h = self.headers.get("Authorization", "")
        tok = h[7:] if h.lower().startswith("bearer ") else None
        with st.lock:
            st.api_calls += 1
            after = st.faults.get("revoke_tokens_after")
            if after is not None and not st.revoked and st.api_calls > after:
                st.revoked = True
                st.tokens.clear()
            ok = tok in st.tokens and st.tokens[tok] > time.time()
        if not ok:
            self.send(401, {"error": "invalid_token", "message": "token expired or unknown"})
        return ok

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/oauth/token":
            return self.token()
        if u.path == "/api/v1/audit-log-exports":
            return self.create()
        self.send(404, {"message": "no such endpoint"})

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path.startswith("/api/v1/audit-log-exports/"):
            return self.job(u.path.rsplit("/", 1)[1])
        if u.path.startswith("/exports/"):
            return self.download(u)
        self.send(404, {"message": "no such endpoint"})

    def token(self):
        st = self.st
        form = urllib.parse.parse_qs(self.body().decode())
        one = lambda k: (form.get(k) or [""])[0]
        if (
            one("grant_type") != "client_credentials"
            or one("client_id") != st.args.client_id
            or one("client_secret") != st.args.client_secret
        ):
            return self.send(401, {"error": "invalid_client"})
        ttl = int(st.faults.get("token_ttl", 3600))
        tok = "tok-" + secrets.token_hex(20)
        with st.lock:
            st.tokens[tok] = time.time() + ttl
        st.note(issued="token", value=tok)
        self.send(200, {"access_token": tok, "token_type": "Bearer", "expires_in": ttl})

    def create(self):
        st = self.st
        raw = self.body()
        if not self.authorised():
            return
        try:
            q = json.loads(raw)
        except ValueError:
            return self.send(400, {"message": "body is not JSON"})
        st.note(create=q)
        with st.lock:
            st.creates += 1
            n = st.creates
        errors = st.faults.get("create_errors", [])
        if n <= len(errors):
            return self.send(errors[n - 1], {"message": "try again later"}, headers={"Retry-After": "0"})
        a, b = parse_window_time(q.get("from")), parse_window_time(q.get("to"))
        if a is None or b is None:
            return self.send(400, {"message": "from and to must be RFC 3339 UTC times without a fraction"})
        if b <= a:
            return self.send(400, {"message": "from must be before to"})
        if b - a > 31 * 86400:
            return self.send(400, {"message": "the time range may not exceed 31 days"})
        lines = [
            text
            for (t, r, text) in st.records
            if a <= t < b
            and all(r.get(field) == q[key] for key, field in FILTERS.items() if key in q)
        ]
        limit = st.faults.get("max_records")
        if limit is not None and len(lines) > limit:
            return self.send(
                400,
                {"message": "the audit log file would exceed the maximum size of 1GB; "
                            "narrow the time range or add filters"},
            )
        with st.lock:
            job_id = f"job-{n:04d}-{secrets.token_hex(4)}"
            fmt = st.faults.get("format", "alternate")
            if fmt == "alternate":
                fmt = "zip" if n % 2 else "gzip"
            st.jobs[job_id] = {
                "n": n,
                "lines": lines,
                "fmt": fmt,
                "polls": 0,
                "started": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "location": None,
            }
        self.send(201, {"jobId": job_id, "startedAt": st.jobs[job_id]["started"],
                        "endedAt": None, "state": "ACTIVE", "location": None})

    def job(self, job_id):
        st = self.st
        if not self.authorised():
            return
        with st.lock:
            job = st.jobs.get(job_id)
            if job is None:
                pass
            else:
                job["polls"] += 1
        if job is None:
            return self.send(404, {"message": "no such job"})
        out = {"jobId": job_id, "startedAt": job["started"], "endedAt": None,
               "state": "ACTIVE", "location": None}
        if job["polls"] <= int(st.faults.get("polls_active", 1)):
            return self.send(200, out)
        out["endedAt"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if job["n"] in st.faults.get("fail_jobs", []):
            out["state"] = "FAILED"
            out["error"] = "the export could not be generated"
            return self.send(200, out)
        if job["n"] in st.faults.get("cancel_jobs", []):
            out["state"] = "CANCELLED"
            return self.send(200, out)
        with st.lock:
            if job["location"] is None:
                body, ext = export_body(job["lines"], job["fmt"], job_id)
                job["body"] = body
                st.urls += 1
                expired = st.urls <= int(st.faults.get("expired_urls", 0))
                expires = int(time.time()) + (-60 if expired else 86400)
                path = f"/exports/{job_id}.{ext}"
                sig = st.sign(path, expires)
                job["location"] = (
                    f"https://127.0.0.1:{st.args.port_seen}{path}"
                    f"?X-Expires={expires}&X-Signature={sig}"
                )
                job["path"] = path
                st.note(issued="signature", value=sig)
        out["state"] = "SUCCEEDED"
        out["location"] = job["location"]
        self.send(200, out)

    def download(self, u):
        st = self.st
        if "Authorization" in self.headers:
            return self.send(400, {"message": "only one auth mechanism allowed"})
        q = urllib.parse.parse_qs(u.query)
        one = lambda k: (q.get(k) or [""])[0]
        job_id = u.path.rsplit("/", 1)[1].split(".", 1)[0]
        job = st.jobs.get(job_id)
        try:
            expires = int(one("X-Expires"))
        except ValueError:
            expires = 0
        if (
            job is None
            or job.get("path") != u.path
            or not hmac.compare_digest(one("X-Signature"), st.sign(u.path, expires))
        ):
            return self.send(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>", "application/xml")
        if expires < time.time():
            return self.send(403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>", "application/xml")
        with st.lock:
            st.downloads += 1
            cut = st.downloads <= int(st.faults.get("cut_downloads", 0))
        body = job["body"]
        rng = self.headers.get("Range")
        m = re.match(r"^bytes=(\d+)-$", rng or "")
        if m and not st.faults.get("no_range"):
            start = int(m.group(1))
            if start >= len(body):
                return self.send(416, b"", headers={"Content-Range": f"bytes */{len(body)}"})
            part = body[start:]
            st.note(range=start)
            return self.send(206, part, "application/octet-stream",
                             {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}, cut=cut)
        self.send(200, body, "application/octet-stream", {"Accept-Ranges": "bytes"}, cut=cut)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--exports", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--faults", default="{}")
    p.add_argument("--log")
    p.add_argument("--records-out")
    args = p.parse_args()
    records = load_exports(args.exports)
    if args.records_out:
        with open(args.records_out, "w") as f:
            for (_, _, text) in records:
                f.write(text + "\n")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    args.port_seen = httpd.server_address[1]
    httpd.state = State(args, json.loads(args.faults), records)
    print(f"port {args.port_seen}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
