#!/usr/bin/env bash
# bench/login-start.sh: login starts (GET login/github, never finished) against `check` with a
# valid token on the same server, for one or more authhost binaries side by side in one run
# (e.g. the build before and after a change), only against 127.0.0.1, bounded in time
# (about 3 x 2 x DURATION seconds per binary).
#
#   bench/login-start.sh                                  # target/release/authhost
#   bench/login-start.sh /tmp/before/authhost target/release/authhost
#   BENCH_DURATION=5 BENCH_CONNECTIONS=64 ...             # seconds per wrk run, connections
#
# Each binary gets its own server and SQLite file; the servers take turns (three back-to-back
# pairs each: login start, then check), and the verdict is the median of the three ratios
# login-start/check, so the machine's speed of the moment cancels out. Rows left in the
# database after the load are counted too: a login start should write none. Non-2xx answers
# are shown (a 429 would mean a pending-login cap was reached).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=("$ROOT/target/release/authhost")
WORK=$(mktemp -d /tmp/authhost-login-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
command -v sqlite3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 >/dev/null; }
if [ ! -x "${BINS[0]}" ]; then cargo build --release -q -p authhost; fi
export AUTHHOST_PLUGIN_PATH=$ROOT/target/release/deps:$ROOT/target/release

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

"${BINS[0]}" keygen --out "$WORK/keys" >/dev/null 2>&1
PORTS=() TOKENS=() DBS=()
for i in "${!BINS[@]}"; do
  bin=${BINS[$i]} dir=$WORK/$i port=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/authhost.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
external_address = "http://127.0.0.1:$port"
data_dir = "$dir"
[database]
url = "sqlite://$dir/authhost.db?mode=rwc"
[keys]
private_key_file = "$WORK/keys/private.pem"
public_key_file = "$WORK/keys/public.pem"
[plugins]
services = "example:sample_permission_provider"
[providers.github]
client_id = "bench-client"
client_secret = "bench-secret"
auth_url = "http://127.0.0.1:9/login/oauth/authorize"
token_url = "http://127.0.0.1:9/login/oauth/access_token"
api_url = "http://127.0.0.1:9/api"
# Binaries before the sealed login cookie cap pending logins per address: raised to their
# maximum so they measure their database work, not 429s. Later ones ignore it (a warning).
[login]
max_pending_per_client = 10000000
max_pending_total = 10000000
EOF
  AUTHHOST_LOG=error "$bin" --config "$dir/authhost.toml" serve 2>"$dir/log" &
  PIDS+=("$!")
  for _ in $(seq 1 500); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.01; done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$dir/log" >&2; exit 1; }
  token=$("$bin" --config "$dir/authhost.toml" token --email bench@example.org 2>/dev/null)
  curl -s -H "auth-token: $token" "http://127.0.0.1:$port/auth/check" | grep -q '"authenticated":true'
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/auth/login/github")
  [ "$code" = 302 ] || { echo "login start answered $code" >&2; exit 1; }
  PORTS+=("$port") TOKENS+=("$token") DBS+=("$dir/authhost.db")
done

rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
non2xx() { awk '/Non-2xx/ {print $5}' "$1" | grep . || echo 0; }
echo "| binary | pair | login start req/s | non-2xx/3xx | check req/s | login/check |"
echo "|---|---|---|---|---|---|"
for pair in 1 2 3; do
  for i in "${!BINS[@]}"; do
    port=${PORTS[$i]} out=$WORK/$i/pair-$pair
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" "http://127.0.0.1:$port/auth/login/github" >"$out-login.txt" 2>&1
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -H "auth-token: ${TOKENS[$i]}" "http://127.0.0.1:$port/auth/check" >"$out-check.txt" 2>&1
    l=$(rps "$out-login.txt") c=$(rps "$out-check.txt")
    printf '| %s | %s | %s | %s | %s | %s |\n' "${BINS[$i]}" "$pair" "$l" "$(non2xx "$out-login.txt")" "$c" \
      "$(python3 -c "print(f'{$l / $c:.2f}')")"
    echo "$l $c" >>"$WORK/$i/ratios"
  done
done
echo
for i in "${!BINS[@]}"; do
  median=$(python3 -c "
import statistics, sys
pairs = [tuple(map(float, l.split())) for l in open('$WORK/$i/ratios')]
print(f'{statistics.median(l / c for l, c in pairs):.2f}')")
  rows=$(sqlite3 "${DBS[$i]}" "SELECT COALESCE(SUM(n), 0) FROM (SELECT COUNT(*) AS n FROM users UNION ALL SELECT COUNT(*) FROM hook_events)" 2>/dev/null || echo "?")
  states=$(sqlite3 "${DBS[$i]}" "SELECT COUNT(*) FROM login_states" 2>/dev/null || echo "no table")
  echo "${BINS[$i]}: login start / check, median of 3 pairs at $CONNECTIONS connections: ${median}x; login_states rows after: $states; users + hook events: $rows"
done
