#!/usr/bin/env bash
# bench/many-users.sh: many logged-in users rotating over `check` and `authorize`, on SQLite and
# on PostgreSQL in one run; only against 127.0.0.1, bounded in time (about 5 minutes).
#
#   bench/many-users.sh
#   MANY_USERS=1000 MANY_SECONDS=5 MANY_ROUNDS=1 bench/many-users.sh   # shorter
#
# What it does, per round and per database (SQLite then PostgreSQL, alternating over
# $MANY_ROUNDS (2) rounds so that a slow stretch of the machine hits both): a fresh database (a
# SQLite file; a fresh database on the PostgreSQL of $MANY_POSTGRES, default
# postgres://postgres@127.0.0.1:5432/test, with the URL as an operator writes it: no sslmode,
# so TLS is negotiated as the default `prefer` does; dropped at the end), the release server
# with the defaults (user cache, permission-token cache, and on PostgreSQL the listener for user
# changes), $MANY_USERS (5,000) users logged in through the dev form (bench-tokens), a 3 s
# warm-up pass, then wrk at $MANY_CONNECTIONS (64) for $MANY_SECONDS (10) on `check` and on
# `authorize?service=example`, each request with the next user's token (bench/soak.lua with
# weights 100/0/0/0 and 0/100/0/0). On PostgreSQL, pg_stat_database's xact_commit across the
# check run says how many requests reached the database. A third run per round, postgres-1s, is
# the baseline: PostgreSQL with user_cache_notified_seconds = 0 (as before issue 22).
#
# Report: bench/results/many-users-<UTC date>.md (also printed): req/s per run and PostgreSQL's
# ratio to SQLite (summed over rounds). Target (issue 22): check on PostgreSQL >= 0.8x SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

USERS=${MANY_USERS:-5000}
SECS=${MANY_SECONDS:-10}
CONN=${MANY_CONNECTIONS:-64}
ROUNDS=${MANY_ROUNDS:-2}
PG_ADMIN=${MANY_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
for v in USERS SECS CONN ROUNDS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "many-users: $v must be a positive integer" >&2; exit 2; }
done
[ "$SECS" -le 60 ] || { echo "many-users: MANY_SECONDS at most 60" >&2; exit 2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d /tmp/authhost-many.XXXXXX)
STAMP=$(date -u +%Y-%m-%d)
REPORT=$ROOT/bench/results/many-users-$STAMP.md
SPID= PG_DB=
say() { printf '\n== %s\n' "$*"; }
die() { echo "many-users: $*" >&2; exit 1; }
stop_server() { if [ -n "$SPID" ]; then kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; SPID=; fi; }
drop_pg() {
  if [ -n "$PG_DB" ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || echo "many-users: drop $PG_DB by hand" >&2
    PG_DB=
  fi
}
cleanup() { local rc=$?; stop_server; drop_pg; if [ $rc -eq 0 ]; then rm -rf "$WORK"; else echo "many-users: files kept in $WORK" >&2; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
command -v psql >/dev/null || die "psql is missing (apt-get install postgresql-client)"
psql "$PG_ADMIN" -qAtc 'select 1' >/dev/null 2>&1 || die "PostgreSQL at $PG_ADMIN is not reachable"

say "build (release)"
cargo build --release -q -p authhost -p authhost-bench
BIN=$ROOT/target/release/authhost
export AUTHHOST_PLUGIN_PATH=$ROOT/target/release/deps:$ROOT/target/release
"$BIN" keygen --out "$WORK/keys" 2>/dev/null
export PRIVATE_KEY PUBLIC_KEY
PRIVATE_KEY=$(cat "$WORK/keys/private.pem")
PUBLIC_KEY=$(cat "$WORK/keys/public.pem")

xact() { psql "$PG_ADMIN" -qAtc "SELECT xact_commit FROM pg_stat_database WHERE datname = '$PG_DB'"; }
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }

# One database's run: prints "check_rps authorize_rps transactions_per_check_request".
run_db() {
  local db=$1 round=$2 port url db_url notified=300
  port=$(free_port)
  # The baseline: PostgreSQL as before issue 22, every row for user_cache_ms only.
  [ "$db" != postgres-1s ] || notified=0
  url=http://127.0.0.1:$port
  if [ "$db" = sqlite ]; then
    db_url="sqlite://$WORK/many-$round.db?mode=rwc"
  else
    PG_DB=authhost_many_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
    psql "$PG_ADMIN" -qc "CREATE DATABASE $PG_DB" >/dev/null
    local base=${PG_ADMIN%%\?*}
    db_url="${base%/*}/$PG_DB"
  fi
  cat >"$WORK/authhost.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
external_address = "http://127.0.0.1:$port"
data_dir = "$WORK"
[database]
url = "$db_url"
user_cache_notified_seconds = $notified
[plugins]
services = "example:sample_permission_provider"
[providers.dev]
enabled = true
EOF
  AUTHHOST_LOG=warn "$BIN" --config "$WORK/authhost.toml" serve 2>"$WORK/server-$db-$round.log" &
  SPID=$!
  for _ in $(seq 1 300); do curl -sf "$url/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf "$url/readyz" >/dev/null || die "$db: the server is not ready: $(cat "$WORK/server-$db-$round.log")"
  "$ROOT/target/release/bench-tokens" "$url" "$USERS" >"$WORK/tokens.txt" 2>"$WORK/tokens.err" \
    || die "$db: bench-tokens failed: $(cat "$WORK/tokens.err")"
  [ "$(grep -c . "$WORK/tokens.txt")" -eq "$USERS" ] || die "$db: expected $USERS tokens"
  curl -sf -H "auth-token: $(head -1 "$WORK/tokens.txt")" "$url/auth/check" | grep -q '"authenticated":true' \
    || die "$db: a token is not authenticated"
  wrk -t2 -c"$CONN" -d3s -s bench/soak.lua "$url" -- "$WORK/tokens.txt" 50/50/0/0 >/dev/null 2>&1
  local x0 x1 per
  [ "$db" = sqlite ] || x0=$(xact)
  wrk -t2 -c"$CONN" -d"${SECS}s" -s bench/soak.lua "$url" -- "$WORK/tokens.txt" 100/0/0/0 >"$WORK/wrk-check-$db-$round.txt" 2>&1
  if [ "$db" = sqlite ]; then
    per=n/a
  else
    x1=$(xact)
    per=$(python3 -c "
import re
t = open('$WORK/wrk-check-$db-$round.txt').read()
n = int(re.search(r'(\d+) requests in', t).group(1))
print(f'{($x1 - $x0) / n:.3f}')")
  fi
  wrk -t2 -c"$CONN" -d"${SECS}s" -s bench/soak.lua "$url" -- "$WORK/tokens.txt" 0/100/0/0 >"$WORK/wrk-authorize-$db-$round.txt" 2>&1
  grep -q "Non-2xx" "$WORK/wrk-check-$db-$round.txt" "$WORK/wrk-authorize-$db-$round.txt" \
    && die "$db: non-2xx answers (see $WORK)"
  stop_server
  drop_pg
  echo "$(rps "$WORK/wrk-check-$db-$round.txt") $(rps "$WORK/wrk-authorize-$db-$round.txt") $per"
}

ROWS=
declare -A SUM
DBS="sqlite postgres postgres-1s"
for db in $DBS; do SUM[$db-check]=0; SUM[$db-authorize]=0; done
for round in $(seq 1 "$ROUNDS"); do
  for db in $DBS; do
    say "round $round: $db"
    read -r c a per < <(run_db "$db" "$round")
    echo "check $c req/s, authorize $a req/s, database transactions per check request: $per"
    ROWS+="| $round | $db | $c | $a | $per |"$'\n'
    SUM[$db-check]=$(python3 -c "print(${SUM[$db-check]} + $c)")
    SUM[$db-authorize]=$(python3 -c "print(${SUM[$db-authorize]} + $a)")
  done
done
ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }
CHECK_RATIO=$(ratio "${SUM[postgres-check]}" "${SUM[sqlite-check]}")
AUTHORIZE_RATIO=$(ratio "${SUM[postgres-authorize]}" "${SUM[sqlite-authorize]}")
BASE_CHECK_RATIO=$(ratio "${SUM[postgres-1s-check]}" "${SUM[sqlite-check]}")
BASE_AUTHORIZE_RATIO=$(ratio "${SUM[postgres-1s-authorize]}" "${SUM[sqlite-authorize]}")
VERDICT=$(python3 -c "print('met' if ${SUM[postgres-check]} >= 0.8 * ${SUM[sqlite-check]} else 'NOT met')")
mkdir -p "$(dirname "$REPORT")"
cat >"$REPORT" <<EOF
# Many users, $STAMP

\`bench/many-users.sh\` (MANY_USERS=$USERS, MANY_SECONDS=$SECS, MANY_CONNECTIONS=$CONN,
MANY_ROUNDS=$ROUNDS), release build $(git rev-parse --short HEAD), $(nproc) cores, wrk on the
same machine. Defaults: user cache (SQLite: \`user_cache_ms\` 1 s; PostgreSQL: rows kept for
\`user_cache_notified_seconds\` 300 s while listening for changes), permission-token cache on.
PostgreSQL $(psql "$PG_ADMIN" -qAtc 'show server_version') on 127.0.0.1:5432, URL without
sslmode (TLS if the server offers it). Each request carries the next of $USERS users' tokens.

| round | database | check req/s | authorize req/s | PostgreSQL transactions per check request |
|---|---|---|---|---|
$ROWS
\`postgres-1s\` is the baseline: PostgreSQL as before issue 22 (\`user_cache_notified_seconds = 0\`,
every row kept for \`user_cache_ms\` only).

PostgreSQL / SQLite, summed over rounds: **check $CHECK_RATIO**, authorize $AUTHORIZE_RATIO
(baseline postgres-1s / SQLite: check $BASE_CHECK_RATIO, authorize $BASE_AUTHORIZE_RATIO).
Target (issue 22): check on PostgreSQL >= 0.8x SQLite: **$VERDICT**.
EOF
cat "$REPORT"
