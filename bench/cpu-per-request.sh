#!/usr/bin/env bash
# bench/cpu-per-request.sh PID URL [HEADER]: loads URL with wrk (64 connections, BENCH_DURATION
# seconds, default 5) and prints req/s and the CPU the process PID spent per request (user and
# kernel, from /proc/PID/stat). On a shared 2-core machine req/s moves by ±10% from minute to
# minute; CPU per request is far steadier, so it is what to compare when trying a change.
#
#   bench/cpu-per-request.sh "$(pgrep -f 'authhost.*serve')" http://127.0.0.1:8000/auth/check "auth-token: $TOKEN"
set -euo pipefail
PID=$1 URL=$2 HEADER=${3:-}
ticks() { awk '{print $14, $15}' "/proc/$PID/stat"; }
read -r u0 s0 < <(ticks)
args=(-t2 -c"${BENCH_CONNECTIONS:-64}" -d"${BENCH_DURATION:-5}s")
[ -n "$HEADER" ] && args+=(-H "$HEADER")
out=$(wrk "${args[@]}" "$URL")
read -r u1 s1 < <(ticks)
reqs=$(awk '/requests in/ {print $1}' <<<"$out")
rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
awk -v r="$reqs" -v rps="$rps" -v du=$((u1 - u0)) -v ds=$((s1 - s0)) -v t="$(getconf CLK_TCK)" 'BEGIN {
  printf "%9.0f req/s   CPU per request: user %6.2f us, kernel %6.2f us, total %6.2f us\n",
    rps, du / t * 1e6 / r, ds / t * 1e6 / r, (du + ds) / t * 1e6 / r }'
