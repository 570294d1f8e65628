#!/usr/bin/env bash
# bench/soak.sh: the release authhost under long mixed load, with plugin reloads, on SQLite and on
# PostgreSQL; only against 127.0.0.1.
#
#   bench/soak.sh                     # SQLite, then PostgreSQL (about 2 x 11 minutes)
#   bench/soak.sh sqlite              # one database only
#   bench/soak.sh postgres
#   SOAK_SECONDS=40 bench/soak.sh     # a short try (default 600); its report gets a -short suffix
#
# What it does: builds the release server, writes a fresh configuration (fresh SQLite file, or a
# fresh PostgreSQL database `authhost_soak_<random>` on the server of $SOAK_POSTGRES, default
# postgres://postgres@127.0.0.1:5432/test, dropped at the end; the run fails at once if PostgreSQL
# does not answer), creates $SOAK_USERS (50) users' tokens with `authhost token`, starts the
# server and checks one answer of each request type. Then wrk runs $SOAK_CONNECTIONS (256)
# connections for $SOAK_SECONDS of mixed traffic (bench/soak.lua; weights $SOAK_WEIGHTS,
# default 50/20/10/20): `check` with a token, `authorize?service=example` with a token and the
# permission-token cache off (every answer signs), `public-key`, and `check` without a token.
# Meanwhile the server gets a SIGHUP (plugin reload) every 20 s and its VmRSS is read every 10 s.
#
# How to read the result: the report (bench/results/soak-<UTC date>-<db>.md, also printed) has
# the counts by request type, the socket errors, the reloads, the RSS series and the verdict. It
# PASSES (exit 0) only with: zero non-2xx answers; zero socket errors (connect, read, write,
# timeout; wrk's --timeout is 5 s); zero wrong 2xx answers (a token refused, an unknown body);
# every SIGHUP answered by "plugins reloaded" and no "reload failed"; the server still running;
# and RSS at the end <= 1.25 x RSS after the warm-up (60 s, or SOAK_SECONDS/5 when shorter).
# Anything else exits 1 and names each reason. "Non-2xx" answers are listed with status and the
# start of their body; the server's own request counters (/metrics, by route and status, taken
# before and after the load) name the route each status came from. The server log is kept next
# to a failed run's report (the script prints where).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

usage() { echo "usage: bench/soak.sh [sqlite|postgres]   (none: both, one after the other)" >&2; exit 2; }
[ $# -le 1 ] || usage
if [ $# -eq 0 ]; then
  rc=0
  "$0" sqlite || rc=1
  "$0" postgres || rc=1
  [ $rc -eq 0 ] && echo "soak: both databases PASS" || echo "soak: FAIL on at least one database (see above)"
  exit $rc
fi
DB=$1
case $DB in sqlite | postgres) ;; *) usage ;; esac

SECS=${SOAK_SECONDS:-600}
CONN=${SOAK_CONNECTIONS:-256}
THREADS=${SOAK_THREADS:-2}
PORT=${SOAK_PORT:-18090}
USERS=${SOAK_USERS:-50}
WEIGHTS=${SOAK_WEIGHTS:-50/20/10/20}
RELOAD_EVERY=${SOAK_RELOAD_EVERY:-20}
SAMPLE_EVERY=${SOAK_SAMPLE_EVERY:-10}
PG_ADMIN=${SOAK_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}
LOG_FILTER=warn,authhost=info # "plugins reloaded" and "reload failed" are authhost's info/error
WRK_TIMEOUT=5
# The baseline of the memory check: after the first minute, or a fifth of a short run.
WARM=$(( SECS / 5 < 60 ? SECS / 5 : 60 ))
[ "$WARM" -ge 1 ] || WARM=1
for v in SECS CONN THREADS PORT USERS RELOAD_EVERY SAMPLE_EVERY; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "soak: $v must be a positive integer, not '${!v}'" >&2; exit 2; }
done
[ "$SECS" -ge 10 ] || { echo "soak: SOAK_SECONDS must be at least 10" >&2; exit 2; }

STAMP=$(date -u +%Y-%m-%d)
RESULTS=$ROOT/bench/results
SUFFIX=
[ "$SECS" -ge 600 ] || SUFFIX=-short
REPORT=$RESULTS/soak-$STAMP-$DB$SUFFIX.md
WORK=$(mktemp -d /tmp/authhost-soak-$DB.XXXXXX)
mkdir -p "$RESULTS"
URL=http://127.0.0.1:$PORT
SPID= MPID= PG_DB=
say() { printf '\n== [%s] %s\n' "$DB" "$*"; }
die() { echo "soak [$DB]: $*" >&2; exit 1; }

cleanup() {
  local rc=$?
  [ -n "$MPID" ] && kill "$MPID" 2>/dev/null || true
  if [ -n "$SPID" ]; then kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; fi
  if [ -n "$PG_DB" ]; then
    psql "$PG_ADMIN" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 \
      && echo "soak [$DB]: dropped database $PG_DB" \
      || echo "soak [$DB]: could not drop database $PG_DB; drop it by hand" >&2
  fi
  if [ $rc -eq 0 ]; then rm -rf "$WORK"; else echo "soak [$DB]: files of this run kept in $WORK" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "tools"
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [ "$DB" = postgres ] && ! command -v psql >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null
fi
if [ "$DB" = postgres ]; then
  psql "$PG_ADMIN" -v ON_ERROR_STOP=1 -qAtc 'select 1' >/dev/null 2>"$WORK/psql.err" \
    || die "PostgreSQL at $PG_ADMIN is not reachable: $(tr '\n' ' ' <"$WORK/psql.err")"
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then die "port $PORT is taken (set SOAK_PORT)"; fi

say "build (release)"
cargo build --release -q -p authhost
BIN=$ROOT/target/release/authhost
export AUTHHOST_PLUGIN_PATH=$ROOT/target/release/deps:$ROOT/target/release

say "keys, database, configuration"
"$BIN" keygen --out "$WORK/keys" 2>/dev/null
export PRIVATE_KEY PUBLIC_KEY
PRIVATE_KEY=$(cat "$WORK/keys/private.pem")
PUBLIC_KEY=$(cat "$WORK/keys/public.pem")
if [ "$DB" = sqlite ]; then
  DB_URL="sqlite://$WORK/soak.db?mode=rwc"
  DB_DESC="SQLite, fresh file"
else
  PG_DB=authhost_soak_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
  psql "$PG_ADMIN" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $PG_DB" >/dev/null
  base=${PG_ADMIN%%\?*}
  query=${PG_ADMIN#"$base"}
  DB_URL="${base%/*}/$PG_DB$query"
  DB_DESC="PostgreSQL $(psql "$PG_ADMIN" -qAtc 'show server_version'), fresh database $PG_DB (dropped at the end)"
fi
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

say "$USERS users' tokens"
: >"$WORK/tokens.txt"
for i in $(seq 1 "$USERS"); do
  "$BIN" "${CFG[@]}" token --email "user$i@example.org" --name "User $i" >>"$WORK/tokens.txt" 2>"$WORK/token.err" \
    || die "authhost token failed for user$i: $(cat "$WORK/token.err")"
done
[ "$(grep -c . "$WORK/tokens.txt")" -eq "$USERS" ] || die "expected $USERS tokens in $WORK/tokens.txt"
TOKEN1=$(head -1 "$WORK/tokens.txt")

say "start the server"
AUTHHOST_LOG=$LOG_FILTER "$BIN" "${CFG[@]}" serve 2>"$WORK/server.log" &
SPID=$!
for _ in $(seq 1 600); do
  curl -sf "$URL/readyz" >/dev/null 2>&1 && break
  kill -0 "$SPID" 2>/dev/null || die "the server exited at start: $(cat "$WORK/server.log")"
  sleep 0.1
done
curl -sf "$URL/readyz" >/dev/null || die "the server is not ready after 60 s"
# One of each request type, answered as expected, before anything is measured.
curl -sf -H "auth-token: $TOKEN1" "$URL/auth/check" | grep -q '"authenticated":true' \
  || die "check with a token is not authenticated"
curl -sf -H "auth-token: $TOKEN1" "$URL/auth/authorize?service=example" | grep -q '"token"' \
  || die "authorize gives no permission token"
curl -sf "$URL/auth/public-key" | grep -q 'BEGIN PUBLIC KEY' || die "public-key gives no key"
curl -sf "$URL/auth/check" | grep -q '"authenticated":false' || die "check without a token is not anonymous"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SPID/status" 2>/dev/null || true; }
metrics() { curl -sf "$URL/metrics" | grep -E '^authhost_(http_requests|connections_refused)_total\{' || true; }
metrics >"$WORK/metrics-before.txt"

# Every second: RSS every SAMPLE_EVERY s and at the end of the warm-up; SIGHUP every RELOAD_EVERY s.
monitor() {
  local start_us now_us t=0 r
  start_us=${EPOCHREALTIME/./}
  printf '0\t%s\n' "$(rss_kb)" >>"$WORK/rss.tsv"
  while [ $t -lt $((SECS - 1)) ]; do
    t=$((t + 1))
    now_us=${EPOCHREALTIME/./}
    local wait_us=$((start_us + t * 1000000 - now_us))
    if [ $wait_us -gt 0 ]; then sleep "$(printf '%d.%06d' $((wait_us / 1000000)) $((wait_us % 1000000)))"; fi
    if [ $((t % SAMPLE_EVERY)) -eq 0 ] || [ $t -eq "$WARM" ]; then
      r=$(rss_kb)
      printf '%s\t%s\n' "$t" "${r:-gone}" >>"$WORK/rss.tsv"
      if [ $t -eq "$WARM" ]; then printf '%s\n' "${r:-0}" >"$WORK/rss-warm.txt"; fi
    fi
    if [ $((t % RELOAD_EVERY)) -eq 0 ]; then
      if kill -HUP "$SPID" 2>/dev/null; then echo "$t" >>"$WORK/hups.txt"; fi
    fi
  done
}

say "load: ${SECS}s, $CONN connections, weights check/authorize/public-key/anonymous = $WEIGHTS"
: >"$WORK/rss.tsv"
: >"$WORK/hups.txt"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
monitor &
MPID=$!
WRK_RC=0
wrk -t"$THREADS" -c"$CONN" -d"${SECS}s" --timeout "${WRK_TIMEOUT}s" -s "$ROOT/bench/soak.lua" "$URL" \
  -- "$WORK/tokens.txt" "$WEIGHTS" >"$WORK/wrk.txt" 2>&1 || WRK_RC=$?
END_RSS=$(rss_kb)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
printf '%s\t%s\n' "$SECS" "${END_RSS:-gone}" >>"$WORK/rss.tsv"
kill "$MPID" 2>/dev/null || true
wait "$MPID" 2>/dev/null || true
MPID=
SERVER_ALIVE=yes
kill -0 "$SPID" 2>/dev/null || SERVER_ALIVE=no
metrics >"$WORK/metrics-after.txt"
cat "$WORK/wrk.txt"

# The reload a SIGHUP started may still be finishing.
HUPS=$(grep -c . "$WORK/hups.txt" || true)
for _ in $(seq 1 100); do
  [ "$(grep -c 'plugins reloaded' "$WORK/server.log" || true)" -ge "$HUPS" ] && break
  grep -q 'reload failed' "$WORK/server.log" && break
  sleep 0.1
done
RELOADED=$(grep -c 'plugins reloaded' "$WORK/server.log" || true)
RELOAD_FAILED=$(grep -c 'reload failed' "$WORK/server.log" || true)

# wrk's numbers, from the lines soak.lua's done() printed.
soak() { awk -v k="$1" '$1 == "SOAK" && $2 == k {print $3; exit}' "$WORK/wrk.txt"; }
soak2() { awk -v k="$1" -v n="$2" '$1 == "SOAK" && $2 == k && $3 == n {print $4; exit}' "$WORK/wrk.txt"; }
REQUESTS=$(soak requests); REQUESTS=${REQUESTS:-0}
DURATION_US=$(soak duration_us); DURATION_US=${DURATION_US:-1}
RPS=$(awk -v r="$REQUESTS" -v d="$DURATION_US" 'BEGIN {printf "%.0f", r / (d / 1e6)}')
ERRLINE=$(grep '^SOAK errors ' "$WORK/wrk.txt" || echo "SOAK errors connect=? read=? write=? timeout=? status=?")
err() { sed -n "s/.* $1=\([0-9?]*\).*/\1/p" <<<"$ERRLINE"; }
E_CONNECT=$(err connect) E_READ=$(err read) E_WRITE=$(err write) E_TIMEOUT=$(err timeout) E_STATUS=$(err status)
LAT=$(grep '^SOAK latency_us ' "$WORK/wrk.txt" | cut -d' ' -f3- || true)
lat_ms() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$LAT" | awk '{printf "%.1f", $1 / 1000}'; }
NON2XX=$(soak non2xx); NON2XX=${NON2XX:-?}
WRONG_CHECK=$(soak wrong_check); WRONG_CHECK=${WRONG_CHECK:-?}
WRONG_AUTH=$(soak2 answer authorize_denied); WRONG_AUTH=${WRONG_AUTH:-?}
OTHER2XX=$(soak2 answer other2xx); OTHER2XX=${OTHER2XX:-?}
WARM_RSS=$(cat "$WORK/rss-warm.txt" 2>/dev/null || echo 0)

say "verdict"
REASONS=()
[ "$WRK_RC" -eq 0 ] || REASONS+=("wrk exited with $WRK_RC")
[ "$REQUESTS" -gt 0 ] || REASONS+=("no requests were answered")
[ "$SERVER_ALIVE" = yes ] || REASONS+=("the server is no longer running")
[ "$NON2XX" = 0 ] || REASONS+=("$NON2XX non-2xx answers")
for e in connect read write timeout; do
  v=E_${e^^}
  [ "${!v}" = 0 ] || REASONS+=("${!v} socket errors ($e)")
done
[ "$WRONG_AUTH" = 0 ] || REASONS+=("$WRONG_AUTH authorize answers without a token (token refused)")
[ "$WRONG_CHECK" = 0 ] || REASONS+=("at least $WRONG_CHECK checks with a token answered as anonymous")
[ "$OTHER2XX" = 0 ] || REASONS+=("$OTHER2XX 2xx answers of no known kind")
[ "$RELOAD_FAILED" = 0 ] || REASONS+=("$RELOAD_FAILED plugin reloads failed")
[ "$RELOADED" -ge "$HUPS" ] || REASONS+=("$HUPS SIGHUPs sent, only $RELOADED 'plugins reloaded'")
if [ -z "$END_RSS" ] || [ "$WARM_RSS" -le 0 ]; then
  REASONS+=("RSS not measured (warm-up: ${WARM_RSS:-none} kB, end: ${END_RSS:-none} kB)")
  RSS_RATIO=?
else
  RSS_RATIO=$(awk -v e="$END_RSS" -v w="$WARM_RSS" 'BEGIN {printf "%.3f", e / w}')
  [ $((END_RSS * 100)) -le $((WARM_RSS * 125)) ] \
    || REASONS+=("RSS grew to $RSS_RATIO x its value at ${WARM}s ($WARM_RSS kB -> $END_RSS kB; limit 1.25)")
fi
if [ ${#REASONS[@]} -eq 0 ]; then VERDICT=PASS; else VERDICT=FAIL; fi

# The report.
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || COMMIT="$COMMIT (with uncommitted changes)"
CMD="bench/soak.sh $DB"
for v in SOAK_SECONDS SOAK_CONNECTIONS SOAK_THREADS SOAK_PORT SOAK_USERS SOAK_WEIGHTS SOAK_RELOAD_EVERY SOAK_SAMPLE_EVERY SOAK_POSTGRES; do
  [ -z "${!v:-}" ] || CMD="$v=${!v} $CMD"
done
{
  echo "# authhost soak: $DB, $STAMP"
  echo
  echo "**Verdict: $VERDICT**"
  [ ${#REASONS[@]} -eq 0 ] || echo
  for r in "${REASONS[@]}"; do echo "- $r"; done
  echo
  echo "- Command: \`$CMD\`"
  echo "- Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) memory, $(uname -sr); load average (1/5/15 min) before the load $LOAD_BEFORE, at its end $LOAD_AFTER (the server and wrk share the cores; other work on the machine shows here)"
  echo "- Commit: $COMMIT"
  echo "- Database: $DB_DESC"
  echo "- Load: \`wrk -t$THREADS -c$CONN -d${SECS}s --timeout ${WRK_TIMEOUT}s -s bench/soak.lua\` ($(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)), $USERS users' tokens in rotation; weights check (token) / authorize?service=example (token) / public-key / check (no token) = $WEIGHTS"
  echo "- Server: release build, \`[tokens] permission_token_cache = false\`, services \`example:sample_permission_provider\`, other settings default, \`AUTHHOST_LOG=$LOG_FILTER\`"
  echo "- SIGHUP (plugin reload) every ${RELOAD_EVERY} s; VmRSS every ${SAMPLE_EVERY} s; memory baseline at ${WARM} s"
  echo
  echo "## Counts"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| requests | $REQUESTS |"
  echo "| requests/s | $RPS |"
  echo "| latency p50 / p99 / p99.9 / max | $(lat_ms p50) / $(lat_ms p99) / $(lat_ms p999) / $(lat_ms max) ms |"
  echo "| non-2xx answers | $NON2XX |"
  echo "| socket errors connect / read / write / timeout | $E_CONNECT / $E_READ / $E_WRITE / $E_TIMEOUT |"
  echo "| wrong 2xx answers: authorize without token / token checks answered anonymous (a lower bound, see soak.lua) / unknown | $WRONG_AUTH / $WRONG_CHECK / $OTHER2XX |"
  echo "| SIGHUPs sent / \"plugins reloaded\" / \"reload failed\" | $HUPS / $RELOADED / $RELOAD_FAILED |"
  echo "| server running at the end | $SERVER_ALIVE |"
  echo
  echo "By request type (sent: drawn by soak.lua, including up to $CONN in flight when wrk stopped; right: 2xx answers of that type's expected shape):"
  echo
  echo "| type | sent | right answers |"
  echo "|---|---:|---:|"
  echo "| check with token | $(soak2 sent check) | $(soak2 answer check) |"
  echo "| authorize?service=example | $(soak2 sent authorize) | $(soak2 answer authorize) |"
  echo "| public-key | $(soak2 sent pubkey) | $(soak2 answer pubkey) |"
  echo "| check without token | $(soak2 sent anon) | $(soak2 answer anon) |"
  echo
  echo "HTTP statuses seen by wrk: $(awk '$1 == "SOAK" && $2 == "status" {printf "%s%s: %s", sep, $3, $4; sep = ", "}' "$WORK/wrk.txt")"
  if [ "$NON2XX" != 0 ]; then
    echo
    echo "Non-2xx answers (count, status, start of the body):"
    echo
    echo '```'
    grep '^SOAK non2xx_detail ' "$WORK/wrk.txt" | cut -d' ' -f3- | sort -rn | head -20 || true
    echo '```'
  fi
  echo
  echo "Server-side counters during the load (/metrics, after minus before: requests by route and status, refused connections):"
  echo
  echo '```'
  awk 'NR == FNR {before[$1] = $2; next} {d = $2 - before[$1]; if (d > 0) printf "%d\t%s\n", d, $1}' \
    "$WORK/metrics-before.txt" "$WORK/metrics-after.txt" | sort -k2
  echo '```'
  echo
  echo "## Resident memory (VmRSS)"
  echo
  echo "| t (s) | RSS (MiB) |"
  echo "|---:|---:|"
  while IFS=$'\t' read -r t r; do
    if [ "$r" = gone ] || [ -z "$r" ]; then echo "| $t | gone |"; else echo "| $t | $(mib "$r") |"; fi
  done <"$WORK/rss.tsv"
  echo
  echo "End / baseline at ${WARM} s: $RSS_RATIO (limit 1.25)"
  echo
  echo "## Server log"
  echo
  echo "Warnings and errors (count, line without its time stamp):"
  echo
  echo '```'
  grep -E ' (WARN|ERROR) ' "$WORK/server.log" | sed -E 's/^[^ ]+ +//' | sort | uniq -c | sort -rn | head -20 \
    | grep . || echo "(none)"
  echo '```'
} >"$REPORT"
if [ "$VERDICT" = FAIL ]; then
  cp "$WORK/server.log" "${REPORT%.md}.server.log"
  echo "soak [$DB]: the server log is in ${REPORT%.md}.server.log"
fi

cat "$REPORT"
echo
echo "soak [$DB]: wrote $REPORT"
if [ "$VERDICT" = PASS ]; then
  echo "soak [$DB]: PASS"
  exit 0
fi
echo "soak [$DB]: FAIL: $(IFS=';'; echo "${REASONS[*]}")" >&2
exit 1
