#!/usr/bin/env bash
# bench/oidc.sh: the OpenID Provider's token endpoint (the code grant and the refresh grant)
# against the RSA-2048 signing ceiling, in one run, only against 127.0.0.1, bounded in time
# (about 9 x DURATION seconds per round plus builds).
#
#   bench/oidc.sh                          # writes bench/results/<date>-oidc.md
#   BENCH_DURATION=3 BENCH_NAME=x ...      # seconds per run (at most 15: codes live 60 s and
#                                          # making them takes ~2.4 s per second of run)
#   BENCH_ROUNDS=3                         # rounds (each with its own ceiling); the target is
#                                          # judged on the median ratio
#   BENCH_DATABASE_URL=postgres://...      # an empty database instead of a fresh SQLite file
#                                          # (results in <name>-oidc-postgres.md); either is
#                                          # shared by the rounds, so later rounds run on
#                                          # tables the earlier ones grew
#
# Each grant signs two tokens (an access token and an ID token), so its ceiling is the signing
# ceiling (bench-rsa, all cores) divided by two; the target is >= 0.5x that. wrk (2 threads,
# 64 connections) sends the grants; bench-oidc makes what they spend through the real flow just
# before each run (users log in through the dev form and take codes from oidc/authorize; or one
# refresh family per connection). Rows:
# - code: codes redeemed per second (bench/oidc-code.lua), with the permission-token cache on
#   and off (the access token's permissions are a plugin call either way; the cache is for
#   permission tokens);
# - refresh: refresh tokens rotated per second (bench/oidc-refresh.lua), two families per
#   connection.
# Each round measures the signing ceiling before and after its grants and its ratios use their
# mean; the report gives every round and the median (the machine's rates move by a tenth between
# runs, so one round says little).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
case "$ROUNDS" in ''|*[!0-9]*|0) echo "BENCH_ROUNDS must be a whole number >= 1" >&2; exit 2 ;; esac
if [ "$DURATION" -gt 15 ]; then echo "BENCH_DURATION must be at most 15 (codes live 60 s)" >&2; exit 2; fi
CONNS=64
STAMP=${BENCH_NAME:-$(date -u +%Y-%m-%d)}-oidc${BENCH_DATABASE_URL:+-postgres}
WORK=$(mktemp -d /tmp/authhost-oidc-bench.XXXXXX)
APID=
cleanup() { [ -n "$APID" ] && kill "$APID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'echo "failed at line $LINENO; server log:" >&2; tail -n 5 "$WORK"/*.log >&2 2>/dev/null' ERR
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p authhost -p authhost-bench
BIN=$ROOT/target/release/authhost
export AUTHHOST_PLUGIN_PATH=$ROOT/target/release/deps:$ROOT/target/release

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
REDIRECT=http://127.0.0.1:9/cb
"$BIN" keygen --out "$WORK/keys" >/dev/null 2>&1
cat >"$WORK/authhost.toml" <<EOF
[server]
listen = "127.0.0.1:$PORT"
external_address = "$BASE"
data_dir = "$WORK"
[database]
url = "${BENCH_DATABASE_URL:-sqlite://$WORK/authhost.db?mode=rwc}"
[keys]
private_key_file = "$WORK/keys/private.pem"
public_key_file = "$WORK/keys/public.pem"
[plugins]
services = "example:sample_permission_provider"
[providers.dev]
enabled = true
[clients.bench]
redirect_uris = ["$REDIRECT"]
audience = "example"
EOF

start() { # extra environment
  env "$@" AUTHHOST_LOG=warn "$BIN" --config "$WORK/authhost.toml" serve 2>"$WORK/authhost.log" &
  APID=$!
  until curl -sf "$BASE/readyz" >/dev/null; do sleep 0.01; done
}
stop() { kill "$APID"; wait "$APID" 2>/dev/null || true; APID=; }
rsa() { # signs per second on all cores; fails rather than print nothing
  local n
  n=$("$ROOT/target/release/bench-rsa" 2 | awk '{print $3}')
  [[ "$n" =~ ^[0-9]+(\.[0-9]+)?$ ]] && [ "${n%%.*}" -gt 0 ] || { echo "bench-rsa printed no rate: '$n'" >&2; return 1; }
  echo "$n"
}
export CLIENT=bench REDIRECT THREADS=2
grant() { # mode: prints "rate <per second> ok <n> errors <n>"
  local out=$WORK/wrk-$1.txt
  if [ "$1" = code ]; then
    # Enough codes for 4,000 a second, a little above the two-signature ceiling.
    "$ROOT/target/release/bench-oidc" "$BASE" bench "$REDIRECT" codes $((DURATION * 4000)) >"$WORK/codes.txt"
    CODES=$WORK/codes.txt wrk -t2 -c$CONNS -d"${DURATION}s" -s bench/oidc-code.lua "$BASE/auth/token" >"$out" 2>&1
  else
    # Twice as many families as connections: wrk asks for a few requests before it has answers.
    "$ROOT/target/release/bench-oidc" "$BASE" bench "$REDIRECT" refresh $((CONNS * 2)) >"$WORK/tokens.txt"
    TOKENS=$WORK/tokens.txt wrk -t2 -c$CONNS -d"${DURATION}s" -s bench/oidc-refresh.lua "$BASE/auth/token" >"$out" 2>&1
  fi
  local total errors
  total=$(awk '/requests in/ {print $1}' "$out")
  # Non-2xx answers, and socket errors (connect, read, write, timeout) of wrk's own.
  errors=$(awk '/Non-2xx/ {n += $5} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$out")
  echo "rate $(( (total - errors) / DURATION )) ok $((total - errors)) errors $errors"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round of $ROUNDS: signing ceiling"
  SIGN_BEFORE=$(rsa)
  echo "RSA-2048 sign/s, all cores: $SIGN_BEFORE"
  echo "== code grant, permission-token cache on"
  start
  CODE_ON=$(grant code)
  echo "$CODE_ON"
  echo "== refresh grant"
  REFRESH=$(grant refresh)
  echo "$REFRESH"
  stop
  echo "== code grant, permission-token cache off"
  start AUTHHOST_TOKENS__PERMISSION_TOKEN_CACHE=false
  CODE_OFF=$(grant code)
  echo "$CODE_OFF"
  stop
  SIGN_AFTER=$(rsa)
  echo "RSA-2048 sign/s, all cores: $SIGN_AFTER"
  echo "$SIGN_BEFORE $SIGN_AFTER|$CODE_ON|$CODE_OFF|$REFRESH" >>"$WORK/rounds.txt"
done

DB_KIND=SQLite
[ -n "${BENCH_DATABASE_URL:-}" ] && DB_KIND=PostgreSQL
python3 - "$WORK/rounds.txt" "$ROOT/bench/results/$STAMP.md" "$DURATION" "$DB_KIND" <<'EOF'
import statistics, sys
rounds_file, out, duration, db = sys.argv[1:]
def parse(line):
    f = line.split()
    return float(f[1]), int(f[3]), int(f[5])
rounds = []
for line in open(rounds_file):
    sign, code_on, code_off, refresh = line.strip().split("|")
    before, after = map(float, sign.split())
    ceiling = (before + after) / 2 / 2
    rounds.append((before, after, ceiling, {
        "code grant, cache on": parse(code_on),
        "code grant, cache off": parse(code_off),
        "refresh grant": parse(refresh),
    }))
lines = [
    "# OpenID Provider token endpoint (bench/oidc.sh)",
    "",
    f"{len(rounds)} rounds of {duration} s per run, wrk with 2 threads and 64 connections, {db},",
    "authhost (release) and wrk on this machine's 2 cores. Codes and refresh tokens made through",
    "the real flow just before each run (bench-oidc); rates count answers with status 200 only.",
    "Each round measures the RSA-2048 signing ceiling (bench-rsa, all cores) before and after its",
    "grants; each grant makes two signatures (access and ID token), so a round's ceiling is the mean",
    "of its two measurements divided by two, and each ratio is against its own round's ceiling.",
    "The target is judged on the median of the rounds (this machine's rates move by a tenth",
    "between runs).",
    "",
    "| round | RSA sign/s before, after | ceiling grants/s |",
    "|---:|---:|---:|",
]
for i, (before, after, ceiling, _) in enumerate(rounds, 1):
    lines.append(f"| {i} | {before:,.0f}, {after:,.0f} | {ceiling:,.0f} |")
lines += [
    "",
    "| grant | per second, each round | errors | x ceiling, each round | median x ceiling (target >= 0.5) |",
    "|---|---:|---:|---:|---:|",
]
met = True
for name in ["code grant, cache on", "code grant, cache off", "refresh grant"]:
    rates = [r[3][name][0] for r in rounds]
    errors = sum(r[3][name][2] for r in rounds)
    ratios = [r[3][name][0] / r[2] for r in rounds]
    median = statistics.median(ratios)
    met = met and median >= 0.5 and errors == 0
    lines.append(
        f"| {name} | {', '.join(f'{x:,.0f}' for x in rates)} | {errors} | "
        f"{', '.join(f'{x:.2f}' for x in ratios)} | {median:.2f} |"
    )
lines += ["", "Target (each median >= 0.5x, no errors): " + ("met" if met else "NOT met")]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
print(f"wrote {out}")
EOF
