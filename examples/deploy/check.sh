#!/usr/bin/env bash
# Verifies examples/deploy/authhost.service with `systemd-analyze verify` (run by .ci/run when
# systemd-analyze is there). The unit names /usr/local/bin/authhost, which a build machine does
# not have installed, so the copy checked names the binary just built instead.
# Usage: examples/deploy/check.sh [AUTHHOST_BINARY]   (default: target/debug/authhost)
set -euo pipefail
# A binary named relative to where the script was started from, before the cd below.
BIN=
if [ -n "${1:-}" ]; then BIN=$(realpath "$1"); fi
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
BIN=${BIN:-$ROOT/target/debug/authhost}
[ -x "$BIN" ] || { echo "no authhost binary at $BIN (cargo build first)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
sed "s|/usr/local/bin/authhost|$BIN|g" authhost.service > "$WORK/authhost.service"
# verify prints problems and exits non-zero on any; a clean unit prints nothing.
out=$(systemd-analyze verify "$WORK/authhost.service" 2>&1) || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then echo "$out" >&2; exit 1; fi
echo "authhost.service: systemd-analyze verify finds nothing to fix"
