#!/usr/bin/env python3
"""Writes testdata/fuzz/: small, real-shaped but odd exports used as fuzz seeds and run
by the stable test `ingest::check::tests::fuzz_seeds_and_regressions`. Deterministic.
(Files named crash-* / regress-* there are minimized fuzz findings: not written here.)"""
import gzip, io, json, os, zipfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "fuzz")
DROP = object()


def rec(i, **over):
    r = {"time": f"2025-06-01 10:00:{i % 60:02d}.{i:06d} UTC", "source": "thales/cloudhsm/9000001",
         "resourceID": "svc-fuzz", "actorID": f"client-{i % 3}", "tenantID": "tenant-fuzz",
         "action": "LUNA_SIGN", "status": "LUNA_RET_OK", "traceID": f"fuzz-{i:04d}",
         "meta": {"clientip": "10.9.8.7", "hsmid": "150001", "partid": "9000001", "role": "CU", "ouid": "00ca5e"}}
    for k, v in over.items():
        if v is DROP:
            r.pop(k, None)
        else:
            r[k] = v
    return r


def arr(rs):
    return ("[\n" + ",\n".join(json.dumps(r) for r in rs) + "\n]\n").encode()


def nd(rs):
    return "".join(json.dumps(r) + "\n" for r in rs).encode()


def w(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


os.makedirs(OUT, exist_ok=True)
m = {"clientip": "1.2.3.4", "hsmid": 7, "role": "CO", "ouid": None, "x": [1, {"y": "}"}]}
w("meta-as-string.json", arr([
    rec(0, meta=json.dumps(m)),
    rec(1, meta=" " + json.dumps({"clientip": "a\"b\\u00e9", "partid": {"n": 1}})),
    rec(2, meta="not an object"),
    rec(3, meta="{broken"),
    rec(4, meta=""),
    rec(5, meta=None),
    rec(6, meta=[1, 2]),
    rec(7, meta=12.5),
    rec(8, meta="{\"clientip\":\"\\ud83d\\ude00\",\"hsmid\":\"\\u0000\"}"),
]))
w("trace-id-missing.ndjson", nd([
    rec(0, traceID=DROP), rec(1, traceID=""), rec(2, traceID=None), rec(3, traceID=17),
    rec(4, traceID=DROP, meta=json.dumps({"a": 1})), rec(5, traceID=DROP, meta={"a": 1}),
    rec(6, traceID=DROP, TraceId="other-case"),
]))
times = ["2025-06-01 10:00:00.123456789 UTC", "2025-06-01T10:00:00+14:00", "2025-06-01T10:00:00-0530",
         "0000-01-01 00:00:00 UTC", "9999-12-31T23:59:59.999999Z", "2024-02-29 23:59:59 UTC",
         "2023-02-29 00:00:00 UTC", "2025-06-01t10:00:00z", "2025-06-01 10:00:00 Z",
         "0000-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "2025-06-01 10:00:00.UTC",
         "2025-06-01 10:00:00", "2025-06-01", "", 1717236000, None, "2025-06-01 24:00:00 UTC",
         "2025-06-01T10:00:00+24:00", "2025-06-01T10:00:00+05:60", "\u00e9025-06-01 10:00:00 UTC"]
w("odd-times.json", arr([rec(i, time=t) for i, t in enumerate(times)]))
w("odd-records.json", arr([
    1, "x", None, [], {}, [rec(0)], True,
    rec(1, tenantID=DROP), rec(2, tenantID="  "), rec(3, tenantID=5), rec(4, tenantID="t\u00e9\u0000/../x"),
    rec(5, action={"a": 1}), rec(6, status=["LUNA_RET_OK"]), rec(7, status="Success"),
    {"TIME": "2025-06-01 10:00:00 UTC", "TenantID": "tenant-fuzz", "newField": {"deep": [1, 2]}, "n\u00e9": 1},
    rec(8, time=DROP),
]))
# Duplicate keys, escapes in keys, lone surrogates: written by hand.
w("dup-keys.ndjson",
  b'{"time":"2025-06-01 10:00:00 UTC","time":"2025-06-02 10:00:00 UTC","tenantID":"a","tenantID":"b","x":1,"x":2}\n'
  b'{"ti\\u006de":"2025-06-01 10:00:00 UTC","tenant\\u0049D":"esc","meta":{"clientip":"1","clientip":"2"}}\n'
  b'{"time":"2025-06-01 10:00:00 UTC","tenantID":"\\ud800","action":"\\udc00x"}\n'
  b'{"time":"2025-06-01 10:00:00 UTC","tenantID":"t","meta":"{\\"clientip\\":\\"\\ud800\\"}"}\n'
  b'{"\\ud800":1,"time":"2025-06-01 10:00:00 UTC","tenantID":"t","meta":{"\\udfff":2,"role":"\\ud800"}}\n')
w("bom-ndjson.ndjson", b"\xef\xbb\xbf" + nd([rec(0), rec(1)]) + b"\n\r\n\t \n")
w("deep-nesting.ndjson",
  ('{"time":"2025-06-01 10:00:00 UTC","tenantID":"t","meta":' + "[" * 130 + "]" * 130 + '}\n').encode()
  + nd([rec(1)]) + ("[" * 200 + "]" * 200 + "\n").encode())
# Records over the 4096-byte limit the checks scan with, between ordinary ones.
w("oversized-between.json", arr([rec(0), rec(1, meta={"blob": "\\\"}]" * 1100}), "s" * 4200, rec(2)]))
w("oversized-number.ndjson", nd([rec(0)]) + b"1" * 4200 + b"\n" + nd([rec(2)]) + b"2" * 4100)
w("invalid-utf8.ndjson", nd([rec(0)]) + b'{"time":"2025-06-01 10:00:00 UTC","tenantID":"\xff\xfe"}\n'
  + b'{"time":"2025-06-01 10:00:00 UTC","tenantID":"t","x":"\xc3"}\n' + nd([rec(3)]))
w("broken-after-rows.json", arr([rec(0), rec(1)])[:-20] + b'"x" "y"]')
w("two-partitions.ndjson",
  nd([rec(0), rec(1, tenantID="other"), rec(2, time="2025-06-02 00:00:00 UTC"), rec(3)]))
w("gzip-member.ndjson.gz", gzip.compress(nd([rec(0), rec(1, meta=json.dumps(m))]), mtime=0))
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    def zi(n):
        return zipfile.ZipInfo(n, date_time=(2025, 6, 2, 0, 0, 0))
    z.writestr(zi("a.json"), arr([rec(0), rec(1, traceID=DROP)]), zipfile.ZIP_DEFLATED)
    z.writestr(zi("__MACOSX/._a.json"), b"\x00\x05\x16\x07junk", zipfile.ZIP_DEFLATED)
    z.writestr(zi("dir/"), b"")
    z.writestr(zi("b.ndjson.gz"), gzip.compress(nd([rec(2)]), mtime=0), zipfile.ZIP_STORED)
    z.writestr(zi("c.json"), b"[", zipfile.ZIP_STORED)
w("zip-mixed-members.zip", buf.getvalue())
