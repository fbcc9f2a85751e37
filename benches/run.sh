#!/usr/bin/env bash
# Runs benches/compare.py (auditlake against DuckDB) with everything it needs:
# a virtualenv at target/bench-venv with duckdb and pyarrow from PyPI, and the
# release binary. Arguments go to compare.py unchanged, e.g.
#   benches/run.sh --events 1000000 --reps 3
#   benches/run.sh --smoke
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/target/bench-venv"

if ! "$venv/bin/python" -c 'import duckdb, pyarrow' 2>/dev/null; then
    echo "== virtualenv $venv (duckdb, pyarrow)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade duckdb pyarrow
fi

echo "== cargo build --release" >&2
cargo build --release --manifest-path "$root/Cargo.toml"

# The binary cargo just built, wherever CARGO_TARGET_DIR puts it (a --binary given
# to this script comes later and wins).
target="${CARGO_TARGET_DIR:-$root/target}"
exec "$venv/bin/python" "$root/benches/compare.py" --binary "$target/release/auditlake" "$@"
