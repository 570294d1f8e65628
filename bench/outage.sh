#!/usr/bin/env bash
# bench/outage.sh: the release authhost while its PostgreSQL goes away and comes back; only
# against 127.0.0.1, bounded in time (about a minute with the defaults).
#
#   bench/outage.sh
#   OUTAGE_SECONDS=5 OUTAGE_SAMPLES=10 bench/outage.sh    # shorter
#
# What it does: makes a private PostgreSQL cluster with the machine's initdb/pg_ctl (as the
# `postgres` user when run as root) on a free port, never the shared server; builds the release
# server against it; creates $OUTAGE_USERS (50) users' tokens ("warm": checked once before the
# outage, so this replica has read their rows) and 10 more ("cold": never checked). Then:
#   1. before: wrk, $OUTAGE_CONNECTIONS (64) connections for $OUTAGE_SECONDS (10) of the soak's
#      mixed traffic (bench/soak.lua: check/authorize with warm tokens, public-key, anonymous
#      check) -> req/s;
#   2. stops PostgreSQL (`pg_ctl stop -m fast`); the time until /readyz answers 503 in under
#      100 ms (the breaker is open);
#   3. per route, $OUTAGE_SAMPLES (20) sequential requests with curl: median and worst latency,
#      and the statuses (warm check, warm authorize, cold check, /readyz, logout, update);
#   4. during: the same wrk load -> req/s and non-2xx answers;
#   5. starts PostgreSQL again; the time from `pg_ctl start` returning to /readyz 200;
#   6. after: the same wrk load -> req/s and non-2xx answers (there must be none).
# Report: bench/results/outage-<UTC date>.md (also printed), throughput as ratios to `before`
# measured in the same run. Exit 1 when an expectation fails (named in the report).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SECS=${OUTAGE_SECONDS:-10}
CONN=${OUTAGE_CONNECTIONS:-64}
USERS=${OUTAGE_USERS:-50}
SAMPLES=${OUTAGE_SAMPLES:-20}
for v in SECS CONN USERS SAMPLES; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "outage: $v must be a positive integer" >&2; exit 2; }
done
[ "$SECS" -le 60 ] || { echo "outage: OUTAGE_SECONDS at most 60" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
PG_PORT=$(free_port)
URL=http://127.0.0.1:$PORT
WORK=$(mktemp -d /tmp/authhost-outage.XXXXXX)
PGDIR=$(mktemp -d /tmp/authhost-outage-pg.XXXXXX) # its own: WORK holds the keys, PGDIR goes to postgres
STAMP=$(date -u +%Y-%m-%d)
REPORT=$ROOT/bench/results/outage-$STAMP.md
SPID=
FAILS=()
say() { printf '\n== %s\n' "$*"; }
die() { echo "outage: $*" >&2; exit 1; }

PGBIN=$(pg_config --bindir 2>/dev/null || true)
[ -x "$PGBIN/initdb" ] || PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || die "PostgreSQL's server binaries (initdb, pg_ctl) are missing (apt-get install postgresql)"
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_start() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w start \
    -o "-p $PG_PORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off" >/dev/null
}
pg_stop() { as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m "${1:-fast}" -w stop >/dev/null; }

cleanup() {
  local rc=$?
  if [ -n "$SPID" ]; then kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; fi
  [ -d "$PGDIR/data" ] && pg_stop immediate 2>/dev/null || true
  if [ $rc -eq 0 ]; then rm -rf "$WORK" "$PGDIR"; else echo "outage: files of this run kept in $WORK and $PGDIR" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "private PostgreSQL on 127.0.0.1:$PG_PORT"
[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$PGDIR"
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -A trust -U postgres --no-sync >/dev/null
pg_start
DB_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"

say "build (release)"
cargo build --release -q -p authhost
BIN=$ROOT/target/release/authhost
export AUTHHOST_PLUGIN_PATH=$ROOT/target/release/deps:$ROOT/target/release
"$BIN" keygen --out "$WORK/keys" 2>/dev/null
export PRIVATE_KEY PUBLIC_KEY
PRIVATE_KEY=$(cat "$WORK/keys/private.pem")
PUBLIC_KEY=$(cat "$WORK/keys/public.pem")
cat >"$WORK/authhost.toml" <<EOF
[server]
listen = "127.0.0.1:$PORT"
external_address = "http://127.0.0.1:$PORT"
data_dir = "$WORK"
[database]
url = "$DB_URL"
[tokens]
permission_token_cache = false
[plugins]
services = "example:sample_permission_provider"
EOF
CFG=(--config "$WORK/authhost.toml")
"$BIN" "${CFG[@]}" migrate 2>/dev/null

say "tokens: $USERS warm users, 10 cold"
: >"$WORK/tokens.txt"
for i in $(seq 1 "$USERS"); do
  "$BIN" "${CFG[@]}" token --email "user$i@example.org" >>"$WORK/tokens.txt" 2>/dev/null
done
: >"$WORK/cold.txt"
for i in $(seq 1 10); do
  "$BIN" "${CFG[@]}" token --email "cold$i@example.org" >>"$WORK/cold.txt" 2>/dev/null
done
WARM=$(head -1 "$WORK/tokens.txt")
COLD=$(head -1 "$WORK/cold.txt")

say "start the server"
AUTHHOST_LOG=warn,authhost=info "$BIN" "${CFG[@]}" serve 2>"$WORK/server.log" &
SPID=$!
for _ in $(seq 1 300); do curl -sf "$URL/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$URL/readyz" >/dev/null || die "the server is not ready: $(cat "$WORK/server.log")"
while read -r t; do
  curl -sf -H "auth-token: $t" "$URL/auth/check" | grep -q '"authenticated":true' || die "a warm token is not authenticated"
done <"$WORK/tokens.txt"

# wrk's req/s and its non-2xx count.
load() {
  wrk -t2 -c"$CONN" -d"${SECS}s" --timeout 10s -s "$ROOT/bench/soak.lua" "$URL" \
    -- "$WORK/tokens.txt" 50/20/10/20 >"$WORK/wrk-$1.txt" 2>&1 || true
  local rps non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk-$1.txt")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$WORK/wrk-$1.txt")
  echo "${rps:-0} ${non2xx:-0}"
}
# Median and worst of $SAMPLES requests, in ms, and the distinct statuses.
sample() {
  local name=$1; shift
  : >"$WORK/s.txt"
  for _ in $(seq 1 "$SAMPLES"); do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 15 "$@" >>"$WORK/s.txt" || echo "000 15" >>"$WORK/s.txt"
  done
  python3 - "$name" "$WORK/s.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[2]) if l.strip()]
ms = [float(t) * 1000 for _, t in rows]
codes = ",".join(sorted({c for c, _ in rows}))
print(f"| {sys.argv[1]} | {codes} | {statistics.median(ms):.2f} | {max(ms):.2f} |")
PY
}

say "before: ${SECS}s of mixed load"
read -r BEFORE_RPS BEFORE_BAD < <(load before)
echo "$BEFORE_RPS req/s, non-2xx $BEFORE_BAD"

say "stop PostgreSQL"
pg_stop fast
T0=$(date +%s.%N)
OPEN_AFTER=
for _ in $(seq 1 300); do
  out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 15 "$URL/readyz")
  set -- $out
  if [ "$1" = 503 ] && python3 -c "import sys; sys.exit(0 if float('$2') < 0.1 else 1)"; then
    OPEN_AFTER=$(python3 -c "print(f'{$(date +%s.%N) - $T0:.2f}')")
    break
  fi
  sleep 0.05
done
[ -n "$OPEN_AFTER" ] || FAILS+=("the breaker did not open within the polling")
echo "breaker open ${OPEN_AFTER:-never} s after the stop"

say "per-route latency during the outage ($SAMPLES requests each)"
ROUTES=$(
  sample "check, warm user" -H "auth-token: $WARM" "$URL/auth/check"
  sample "authorize, warm user" -H "auth-token: $WARM" "$URL/auth/authorize?service=example"
  sample "check, cold user" -H "auth-token: $COLD" "$URL/auth/check"
  sample "/readyz" "$URL/readyz"
  sample "logout" -H "auth-token: $WARM" "$URL/auth/logout"
  sample "update (POST)" -X POST -H "auth-token: $WARM" "$URL/auth/update?username=someone"
)
echo "$ROUTES"

say "during: ${SECS}s of mixed load"
read -r DURING_RPS DURING_BAD < <(load during)
echo "$DURING_RPS req/s, non-2xx $DURING_BAD"

say "start PostgreSQL again"
pg_start
T1=$(date +%s.%N)
BACK_AFTER=
for _ in $(seq 1 200); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ]; then
    BACK_AFTER=$(python3 -c "print(f'{$(date +%s.%N) - $T1:.2f}')")
    break
  fi
  sleep 0.02
done
[ -n "$BACK_AFTER" ] || FAILS+=("not ready within 4 s of the database's return")
echo "ready ${BACK_AFTER:-never} s after the database came back"

say "after: ${SECS}s of mixed load"
read -r AFTER_RPS AFTER_BAD < <(load after)
echo "$AFTER_RPS req/s, non-2xx $AFTER_BAD"
[ "$AFTER_BAD" = 0 ] || FAILS+=("$AFTER_BAD non-2xx answers after the recovery")
grep -q "warm user | 200 |" <<<"$ROUTES" || FAILS+=("warm users were not all answered 200 from memory")
kill -0 "$SPID" 2>/dev/null || FAILS+=("the server exited")

ratio() { python3 -c "print(f'{float($1) / float($2):.2f}x' if float($2) > 0 else 'n/a')"; }
VERDICT=PASS
[ ${#FAILS[@]} -eq 0 ] || VERDICT="FAIL: ${FAILS[*]}"
mkdir -p "$(dirname "$REPORT")"
cat >"$REPORT" <<EOF
# Outage benchmark, $STAMP

\`bench/outage.sh\` (OUTAGE_SECONDS=$SECS, OUTAGE_CONNECTIONS=$CONN, OUTAGE_USERS=$USERS,
OUTAGE_SAMPLES=$SAMPLES), release build $(git rev-parse --short HEAD), private PostgreSQL
$("$PGBIN/postgres" --version | awk '{print $3}') on loopback (sslmode=disable), $(nproc) cores;
wrk on the same machine. Mixed load: bench/soak.lua 50/20/10/20 (check, authorize with the
permission-token cache off, public-key, anonymous check).

## Throughput (ratios to "before", same run)

| phase | req/s | ratio | non-2xx |
|---|---|---|---|
| before | $BEFORE_RPS | 1.00x | $BEFORE_BAD |
| during the outage | $DURING_RPS | $(ratio "$DURING_RPS" "$BEFORE_RPS") | $DURING_BAD |
| after the recovery | $AFTER_RPS | $(ratio "$AFTER_RPS" "$BEFORE_RPS") | $AFTER_BAD |

During the outage every request of the load is one that can be answered: warm users (from
memory), public-key, anonymous check; so non-2xx there are failures too.

## Breaker

- open (\`/readyz\` 503 in under 100 ms) ${OPEN_AFTER:-never} s after \`pg_ctl stop -m fast\`
  (the first requests wait out the pool's 5 s acquire timeout; a refused TCP connect confirms);
- ready again ${BACK_AFTER:-never} s after \`pg_ctl start -w\` returned.

## Per-route latency during the outage ($SAMPLES sequential requests each, curl)

| route | statuses | median ms | worst ms |
|---|---|---|---|
$ROUTES

Verdict: $VERDICT
EOF
cat "$REPORT"
[ "$VERDICT" = PASS ]
