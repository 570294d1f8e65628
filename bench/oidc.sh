#!/usr/bin/env bash
# bench/oidc.sh: the OpenID Provider's token endpoint (the code grant and the refresh grant)
# against the RSA-2048 signing ceiling, in one run, only against 127.0.0.1, bounded in time
# (about 8 x DURATION seconds plus builds).
#
#   bench/oidc.sh                          # writes bench/results/<date>-oidc.md
#   BENCH_DURATION=3 BENCH_NAME=x ...      # seconds per run; results file name
#
# Each grant signs two tokens (an access token and an ID token), so its ceiling is the signing
# ceiling (bench-rsa, all cores) divided by two; the target is >= 0.5x that. Rows:
# - code: codes redeemed per second (bench-oidc: users log in through the dev form, take codes
#   from oidc/authorize, then 64 callers redeem them), with the permission-token cache on and
#   off (the access token's permissions are a plugin call either way; the cache is for
#   permission tokens);
# - refresh: refresh tokens rotated per second by 64 callers, one family each.
# The signing ceiling is measured before and after the grants; the ratio uses their mean.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-5}
CONNS=64
STAMP=${BENCH_NAME:-$(date -u +%Y-%m-%d)}-oidc
WORK=$(mktemp -d /tmp/authhost-oidc-bench.XXXXXX)
APID=
cleanup() { [ -n "$APID" ] && kill "$APID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'echo "failed at line $LINENO; server log:" >&2; tail -n 5 "$WORK"/*.log >&2 2>/dev/null' ERR
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
url = "sqlite://$WORK/authhost.db?mode=rwc"
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
grant() { # mode
  "$ROOT/target/release/bench-oidc" "$BASE" bench "$REDIRECT" "$1" "$CONNS" "$DURATION"
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

python3 - "$SIGN_BEFORE" "$SIGN_AFTER" "$CODE_ON" "$CODE_OFF" "$REFRESH" "$ROOT/bench/results/$STAMP.md" "$DURATION" <<'EOF'
import sys
before, after, code_on, code_off, refresh, out, duration = sys.argv[1:]
sign = (float(before) + float(after)) / 2
ceiling = sign / 2
def parse(line):
    f = line.split()
    return float(f[1]), int(f[3]), int(f[5])
rows = [("code grant, cache on", code_on), ("code grant, cache off", code_off), ("refresh grant", refresh)]
lines = [
    "# OpenID Provider token endpoint (bench/oidc.sh)",
    "",
    f"{duration} s per run, 64 concurrent callers, SQLite, one process of authhost (release) on this",
    "machine's 2 cores, the load generator (bench-oidc) on the same cores.",
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
