#!/usr/bin/env bash
# Checks the monitoring kit against authhost itself (run by .ci/run; needs promtool from
# Debian's `prometheus` package, python3 and curl):
#   1. the alert rules are valid and their unit tests pass (promtool check/test rules);
#   2. every dashboard query is valid PromQL (checked as recording rules by promtool);
#   3. every authhost_* family the rules and the dashboard name is one authhost describes
#      (host/src/metrics.rs), so a renamed metric cannot leave a silent alert behind;
#   4. a live scrape of a running server passes `promtool check metrics`, and has the
#      process_* figures the kit uses.
# Usage: examples/monitoring/check.sh [AUTHHOST_BINARY]   (default: target/debug/authhost)
set -euo pipefail
# A binary named relative to where the script was started from, before the cd below.
BIN=
if [ -n "${1:-}" ]; then BIN=$(realpath "$1"); fi
cd "$(dirname "$0")"
KIT=$PWD
ROOT=$(cd ../.. && pwd)
BIN=${BIN:-$ROOT/target/debug/authhost}
command -v promtool >/dev/null || { echo "promtool is missing (apt-get install prometheus)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no authhost binary at $BIN (cargo build first)" >&2; exit 1; }
WORK=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

echo "== rules"
promtool check rules authhost-alerts.yml
promtool test rules authhost-alerts.test.yml

echo "== dashboard queries"
python3 - "$KIT/authhost-dashboard.json" "$WORK/dashboard-rules.yml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
assert exprs, "the dashboard has no queries"
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        e = e.replace("$__rate_interval", "5m").replace('"$instance"', '".*"')
        out.write(f"      - record: dashboard:query{i}\n        expr: {json.dumps(e)}\n")
print(f"{len(exprs)} queries")
PY
promtool check rules "$WORK/dashboard-rules.yml"

echo "== metric names"
python3 - "$ROOT/host/src/metrics.rs" authhost-alerts.yml authhost-dashboard.json <<'PY'
import re, sys
source = open(sys.argv[1]).read()
described = set(re.findall(r'"(authhost_[a-z_]+)"', source))
described |= {"authhost_http_requests_total", "authhost_http_request_duration_seconds"}
missing = set()
for path in sys.argv[2:]:
    for name in set(re.findall(r"\b(authhost_[a-z_]+)", open(path).read())):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in described and base not in described:
            missing.add(f"{path}: {name}")
if missing:
    sys.exit("names authhost does not export:\n  " + "\n  ".join(sorted(missing)))
print(f"{len(described)} described families; every name in the kit is one of them")
PY

echo "== live scrape"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$WORK/authhost.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
external_address = "http://127.0.0.1:$PORT"
data_dir = "$WORK"
[database]
url = "sqlite://$WORK/a.db?mode=rwc"
[plugins]
services = "example:sample_permission_provider"
[providers.dev]
enabled = true
TOML
AUTHHOST_PLUGIN_PATH="$(dirname "$BIN"):$(dirname "$BIN")/deps" AUTHHOST_LOG=warn \
  "$BIN" --config "$WORK/authhost.toml" serve 2>"$WORK/log" &
PID=$!
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.05; done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$WORK/log" >&2; exit 1; }
# Some traffic, so the request, token and cache families have samples.
LOCATION=$(curl -s -o /dev/null -w '%{redirect_url}' -d email=kit@example.org -d next=/auth/check \
  "http://127.0.0.1:$PORT/auth/login/dev")
JWT=${LOCATION##*jwt=}
curl -sf -H "auth-token: $JWT" "http://127.0.0.1:$PORT/auth/check" >/dev/null
curl -sf -H "auth-token: $JWT" "http://127.0.0.1:$PORT/auth/authorize?service=example" >/dev/null
curl -sf -H "auth-token: forged" "http://127.0.0.1:$PORT/auth/check" >/dev/null
curl -sf "http://127.0.0.1:$PORT/metrics" > "$WORK/scrape.txt"
promtool check metrics < "$WORK/scrape.txt"
for family in process_resident_memory_bytes process_open_fds process_max_fds authhost_build_info \
  authhost_tokens_issued_total authhost_tokens_refused_total authhost_cache_hits_total \
  authhost_db_pool_connections authhost_db_pool_max_connections; do
  grep -q "^# HELP $family " "$WORK/scrape.txt" || { echo "the scrape lacks $family" >&2; exit 1; }
done
echo "scrape: $(grep -c '^# TYPE' "$WORK/scrape.txt") families, promtool finds nothing to fix"
echo "== monitoring kit OK"
