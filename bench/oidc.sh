#!/usr/bin/env bash
# bench/oidc.sh: the OpenID Provider's token endpoint (the code grant and the refresh grant)
# against the RSA-2048 signing ceiling, in one run, only against 127.0.0.1, bounded in time
# (about 8 x DURATION seconds plus builds).
#
#   bench/oidc.sh                          # writes bench/results/<date>-oidc.md
#   BENCH_DURATION=3 BENCH_NAME=x ...      # seconds per run (at most 15: codes live 60 s and
#                                          # making them takes ~2.4 s per second of run)
#   BENCH_DATABASE_URL=postgres://...      # an empty database instead of a fresh SQLite file
#                                          # (results in <name>-oidc-postgres.md)
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
# The signing ceiling is measured before and after the grants; the ratio uses their mean.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-5}
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
rsa() { "$ROOT/target/release/bench-rsa" 2 | awk '{print $3}'; }
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

echo "== signing ceiling"
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

DB_KIND=SQLite
[ -n "${BENCH_DATABASE_URL:-}" ] && DB_KIND=PostgreSQL
python3 - "$SIGN_BEFORE" "$SIGN_AFTER" "$CODE_ON" "$CODE_OFF" "$REFRESH" "$ROOT/bench/results/$STAMP.md" "$DURATION" "$DB_KIND" <<'EOF'
import sys
before, after, code_on, code_off, refresh, out, duration, db = sys.argv[1:]
sign = (float(before) + float(after)) / 2
ceiling = sign / 2
def parse(line):
    f = line.split()
    return float(f[1]), int(f[3]), int(f[5])
rows = [("code grant, cache on", code_on), ("code grant, cache off", code_off), ("refresh grant", refresh)]
lines = [
    "# OpenID Provider token endpoint (bench/oidc.sh)",
    "",
    f"{duration} s per run, wrk with 2 threads and 64 connections, {db}, authhost (release) and wrk",
    "on this machine's 2 cores. Codes and refresh tokens made through the real flow just before",
    "each run (bench-oidc); rates count answers with status 200 only.",
    f"RSA-2048 sign/s on all cores (bench-rsa): {float(before):,.0f} before, {float(after):,.0f} after;",
    f"each grant makes two signatures (access and ID token): ceiling {ceiling:,.0f} grants/s.",
    "",
    "| grant | per second | ok | errors | x ceiling (target >= 0.5) |",
    "|---|---:|---:|---:|---:|",
]
met = True
for name, line in rows:
    rate, ok, errors = parse(line)
    ratio = rate / ceiling
    met = met and ratio >= 0.5 and errors == 0
    lines.append(f"| {name} | {rate:,.0f} | {ok} | {errors} | {ratio:.2f} |")
lines += ["", "Target (each >= 0.5x, no errors): " + ("met" if met else "NOT met")]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
print(f"wrote {out}")
EOF
