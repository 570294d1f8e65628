#!/usr/bin/env bash
# bench/flood-memory.sh: resident memory of the release authhost under service-name floods from
# one logged-in user, only against 127.0.0.1, bounded (a few thousand requests, then 30 s of wrk).
#
#   bench/flood-memory.sh
#
# 1. 3,000 `authorize` calls, each with a different 16 KiB service name (the finding of issue 9:
#    the original grew by 209 MiB and kept it). They get 400 (names over 256 bytes).
# 2. 30 s (FLOOD_SECONDS) of wrk at 64 connections, every request a new 250-byte service name, so every answer
#    is a fresh RSA signature that the permission-token cache would keep: the cache holds at most
#    its budget (`[caches] permission_tokens_mib`, 16 MiB by default).
# Prints VmRSS before, after each phase, and the verdict against the issue's 48 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PORT=${FLOOD_PORT:-18095}
WORK=$(mktemp -d /tmp/authhost-flood.XXXXXX)
SPID=
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then echo "port $PORT is taken (set FLOOD_PORT)" >&2; exit 1; fi

cargo build --release -q -p authhost
BIN=$ROOT/target/release/authhost
export AUTHHOST_PLUGIN_PATH=$ROOT/target/release/deps:$ROOT/target/release
"$BIN" keygen --out "$WORK/keys" 2>/dev/null
cat > "$WORK/config.toml" <<EOF
[server]
listen = "127.0.0.1:$PORT"
external_address = "http://127.0.0.1:$PORT"
data_dir = "$WORK"
[database]
url = "sqlite://$WORK/flood.db?mode=rwc"
[keys]
private_key_file = "$WORK/keys/private.pem"
public_key_file = "$WORK/keys/public.pem"
[plugins]
services = "example:sample_permission_provider"
EOF
TOKEN=$("$BIN" --config "$WORK/config.toml" token --email flood@example.org 2>/dev/null)
AUTHHOST_LOG=warn "$BIN" --config "$WORK/config.toml" serve 2>"$WORK/server.log" &
SPID=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.05; done
rss() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$SPID/status"; }

# Warm-up: one of each answer, so that lazily built state is not counted as growth.
curl -sf -H "auth-token: $TOKEN" "http://127.0.0.1:$PORT/auth/authorize?service=example" >/dev/null
BEFORE=$(rss)
echo "RSS before: $BEFORE MiB"

python3 - "$PORT" "$TOKEN" <<'EOF'
import http.client, sys
port, token = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port)
statuses = {}
for i in range(3000):
    conn.request("GET", f"/auth/authorize?service={'s' * (16 * 1024 - 8)}{i:08}", headers={"auth-token": token})
    r = conn.getresponse()
    r.read()
    statuses[r.status] = statuses.get(r.status, 0) + 1
print("phase 1: 3,000 distinct 16 KiB service names, answers by status:", statuses)
EOF
AFTER1=$(rss)
echo "RSS after phase 1: $AFTER1 MiB"

cat > "$WORK/names.lua" <<EOF
local n = 0
local token = "$TOKEN"
local pad = string.rep("n", 240)
setup = function(thread) thread:set("id", tostring(math.random(1, 1e9))) end
request = function()
  n = n + 1
  return wrk.format("GET", "/auth/authorize?service=" .. pad .. id .. "-" .. n, { ["auth-token"] = token })
end
EOF
wrk -t2 -c64 -d${FLOOD_SECONDS:-30}s --timeout 5s -s "$WORK/names.lua" "http://127.0.0.1:$PORT" | grep -E "requests in|Non-2xx|Socket errors|Requests/sec"
AFTER2=$(rss)
echo "RSS after phase 2: $AFTER2 MiB"
curl -sf -H "auth-token: $TOKEN" "http://127.0.0.1:$PORT/auth/authorize?service=example" | grep -q '"token"' \
  && echo "a normal authorize still answers with a token"
GROWN=$(awk -v a="$AFTER1" -v b="$BEFORE" 'BEGIN { printf "%.1f", a - b }')
echo "phase 1 growth: $GROWN MiB (issue 9 allows at most 48)"
awk -v g="$GROWN" 'BEGIN { exit !(g <= 48) }'
