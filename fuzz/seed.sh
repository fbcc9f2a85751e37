#!/bin/sh
# Fills fuzz/corpus/<target>/ with seeds made from testdata/ (nothing here is committed:
# fuzz/corpus is ignored). Safe to rerun; existing corpus files are kept.
set -eu
cd "$(dirname "$0")"
T=../testdata
mkdir -p corpus/scan_decode corpus/member corpus/time corpus/cloudhsm

# member: whole input files, as they come (zip, gzip, plain).
cp "$T"/cases/* "$T"/fuzz/* corpus/member/
cp "$T"/sample/dpod-audit-0b610cb6-2025-01.zip corpus/member/sample-0b610cb6-2025-01.zip

# scan_decode: member bytes, so compressed inputs are unpacked first.
for f in "$T"/cases/* "$T"/fuzz/*; do
    b=$(basename "$f")
    case "$b" in
        *.gz) gzip -dc "$f" > "corpus/scan_decode/$b.member" 2>/dev/null || true ;;
        *.zip) ;;
        big-field.json) head -c 16384 "$f" > "corpus/scan_decode/$b.head" ;;
        *) cp "$f" "corpus/scan_decode/$b" ;;
    esac
done
python3 - "$T" <<'PY'
import sys, zipfile, glob, os
T = sys.argv[1]
zips = sorted(glob.glob(os.path.join(T, "cases", "*.zip")) + glob.glob(os.path.join(T, "fuzz", "*.zip")))
zips.append(os.path.join(T, "sample", "dpod-audit-0b610cb6-2025-01.zip"))
for z in zips:
    try:
        zf = zipfile.ZipFile(z)
    except zipfile.BadZipFile:
        continue
    for i, info in enumerate(zf.infolist()):
        try:
            data = zf.read(info)
        except Exception:
            continue
        # Slices of big members: the first few records are enough to start from.
        out = os.path.join("corpus", "scan_decode", f"{os.path.basename(z)}.{i}")
        with open(out, "wb") as f:
            f.write(data[:8192])
PY

# cloudhsm: the head of each sample subscription delivery, inflated, and its first
# event as a text block and as an S3 export line.
python3 - "$T" <<'PY'
import sys, gzip, glob, os, json
T = sys.argv[1]
for i, f in enumerate(sorted(glob.glob(os.path.join(T, "sample", "aws-cloudhsm", "*.gz")))[:3]):
    data = gzip.open(f).read(32768)
    with open(os.path.join("corpus", "cloudhsm", f"firehose-{i}"), "wb") as out:
        out.write(data)
    docs, at, dec = [], 0, json.JSONDecoder()
    text = gzip.open(f).read(65536).decode("utf-8", "replace")
    while len(docs) < 2:
        doc, at = dec.raw_decode(text, at)
        docs.append(doc)
    block = docs[-1]["logEvents"][0]["message"]
    with open(os.path.join("corpus", "cloudhsm", f"block-{i}"), "w") as out:
        out.write(block + "\n\n" + block + "\n")
    with open(os.path.join("corpus", "cloudhsm", f"s3-{i}"), "w") as out:
        out.write("2025-01-01T00:00:00.000Z " + block + "\n")
PY

# time: time and day strings, good and odd.
i=0
for s in "2022-03-10 15:29:01 UTC" "2022-03-10 15:29:01.5 UTC" "2022-03-10 15:29:01.123456789 UTC" \
         "2022-03-10T15:29:01Z" "2022-03-10T17:29:01.000001+02:00" "2022-03-10T10:29:01-0500" \
         "0000-01-01 00:00:00 UTC" "9999-12-31T23:59:59.999999Z" "2024-02-29 00:00:00 UTC" \
         "2022-03-10t15:29:01z" "2022-03-10 15:29:01 Z" "2022-03-10" "0000-02-29" "9999-12-31"; do
    printf '%s' "$s" > "corpus/time/seed-$i"
    i=$((i + 1))
done
echo "seeded: $(ls corpus/scan_decode | wc -l) scan_decode, $(ls corpus/member | wc -l) member, $(ls corpus/time | wc -l) time, $(ls corpus/cloudhsm | wc -l) cloudhsm"
