#!/usr/bin/env bash
# bench/python-bridge.sh: the original's sample provider as a Python module through the bridge,
# against the Rust sample provider and the RSA-2048 signing ceiling, in one run, only against
# 127.0.0.1, bounded in time (about 14 x DURATION seconds plus builds).
#
#   bench/python-bridge.sh                 # writes bench/results/<date>-python-bridge.md
#   BENCH_DURATION=3 BENCH_NAME=x ...      # seconds per wrk run; results file name
#
# Two servers share one SQLite file and one key: R serves `example` from the Rust
# sample_permission_provider, P from dgp-oauth2 1.3.4's own sample_permission_provider module
# (a venv made here from PyPI) through libpython_provider.so. They take turns in back-to-back
# pairs at 64 connections, so the machine's speed of the moment cancels out of each ratio:
# - cache off (every authorize calls the plugin and signs): P against the signing ceiling
#   (bench-rsa, all cores; target >= 0.7) and against R;
# - cache on (every authorize calls the plugin, the signed token is reused): P against R
#   (target >= 0.9);
# - one caller: authorize latency (wrk -c1, cache on) of P and R, and one plugin call through
#   PluginSet::permissions in a worker (bench-plugin-call): Python against Rust.
# Needs Python's development files for the bridge (Debian: python3-dev python3-venv).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-5}
STAMP=${BENCH_NAME:-$(date -u +%Y-%m-%d)}-python-bridge
WORK=$(mktemp -d /tmp/authhost-python-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'echo "failed at line $LINENO; server logs:" >&2; tail -n 5 "$WORK"/*.log >&2 2>/dev/null' ERR
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
bash plugins/python_bridge/build.sh >/dev/null
cargo build --release -q -p authhost -p authhost-bench
BIN=$ROOT/target/release/authhost
BRIDGE=$ROOT/plugins/python_bridge/target/release
VENV=$ROOT/bench/.venv-bridge
if [ ! -x "$VENV/bin/python" ]; then "${PYO3_PYTHON:-/usr/bin/python3}" -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check dgp-oauth2==1.3.4
unset AUTHHOST_PLUGIN_PATH

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
"$BIN" keygen --out "$WORK/keys" >/dev/null 2>&1
PORT_R=$(free_port) PORT_P=$(free_port)
config() { # name port dirs [python]
  cat >"$WORK/$1.toml" <<EOF
[server]
listen = "127.0.0.1:$2"
# One issuer for both, so that one user token serves both.
external_address = "http://127.0.0.1:$PORT_R"
data_dir = "$WORK"
[database]
url = "sqlite://$WORK/authhost.db?mode=rwc"
[keys]
private_key_file = "$WORK/keys/private.pem"
public_key_file = "$WORK/keys/public.pem"
[plugins]
services = "example:sample_permission_provider"
dirs = ["$3"]
EOF
  if [ -n "${4:-}" ]; then printf '[plugins.python]\nvenv = "%s"\n' "$VENV" >>"$WORK/$1.toml"; fi
}
config r "$PORT_R" "$ROOT/target/release/deps"
config p "$PORT_P" "$BRIDGE" python
"$BIN" --config "$WORK/r.toml" migrate >/dev/null 2>&1
TOKEN=$("$BIN" --config "$WORK/r.toml" token --email user1@bench.example 2>/dev/null)
# P's `example` is the Python module, R's the Rust library.
"$BIN" --config "$WORK/p.toml" plugins 2>/dev/null | grep -q 'python:sample_permission_provider'
! "$BIN" --config "$WORK/r.toml" plugins 2>/dev/null | grep -q 'python:'

start() { # cache(true|false)
  for name in r p; do
    AUTHHOST_TOKENS__PERMISSION_TOKEN_CACHE=$1 AUTHHOST_LOG=warn \
      "$BIN" --config "$WORK/$name.toml" serve 2>"$WORK/$name.log" &
    PIDS+=("$!")
  done
  for port in $PORT_R $PORT_P; do
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.01; done
  done
  # Both answer the original's permissions before anything is measured.
  for port in $PORT_R $PORT_P; do
    curl -s -H "auth-token: $TOKEN" "http://127.0.0.1:$port/auth/authorize?service=example" | grep -q 'provider-token'
  done
}
stop() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }
rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
median() { sort -g | sed -n 2p; }
pairs() { # label -> prints three "P R" lines
  for i in 1 2 3; do
    wrk -t2 -c64 -d"${DURATION}s" -H "auth-token: $TOKEN" "http://127.0.0.1:$PORT_P/auth/authorize?service=example" >"$WORK/$1-p-$i.txt" 2>&1
    wrk -t2 -c64 -d"${DURATION}s" -H "auth-token: $TOKEN" "http://127.0.0.1:$PORT_R/auth/authorize?service=example" >"$WORK/$1-r-$i.txt" 2>&1
    echo "$(rps "$WORK/$1-p-$i.txt") $(rps "$WORK/$1-r-$i.txt")"
  done
}

echo "== RSA-2048 signing ceiling"
read -r _ _ SIGN_ALL _ THREADS < <("$ROOT/target/release/bench-rsa" 2)
echo "sign, all $THREADS cores: $SIGN_ALL/s"

echo "== cache off: Python bridge vs Rust, back-to-back at 64 connections"
start false
OFF=$(pairs off)
echo "$OFF"
stop

echo "== cache on: Python bridge vs Rust, back-to-back at 64 connections"
start true
ON=$(pairs on)
echo "$ON"
echo "== one caller (cache on)"
for name in p r; do
  port=$PORT_R; [ $name = p ] && port=$PORT_P
  wrk -t1 -c1 -d"${DURATION}s" --latency -H "auth-token: $TOKEN" "http://127.0.0.1:$port/auth/authorize?service=example" >"$WORK/one-$name.txt" 2>&1
done
LAT_P=$(awk '/^    Latency/ {print $2; exit}' "$WORK/one-p.txt")
LAT_R=$(awk '/^    Latency/ {print $2; exit}' "$WORK/one-r.txt")
stop
CALL_P=$(BENCH_PYTHON_VENV=$VENV "$ROOT/target/release/bench-plugin-call" "$BIN" "$BRIDGE" 20000)
CALL_R=$("$ROOT/target/release/bench-plugin-call" "$BIN" "$ROOT/target/release/deps" 20000 | awk '{print $2}')
echo "authorize latency, one caller: Python $LAT_P, Rust $LAT_R; one call in a worker: Python $CALL_P us, Rust $CALL_R us"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
OFF_SIGN=$(echo "$OFF" | while read -r p _; do ratio "$p" "$SIGN_ALL"; echo; done | median)
OFF_RUST=$(echo "$OFF" | while read -r p r; do ratio "$p" "$r"; echo; done | median)
RUST_SIGN=$(echo "$OFF" | while read -r _ r; do ratio "$r" "$SIGN_ALL"; echo; done | median)
ON_RUST=$(echo "$ON" | while read -r p r; do ratio "$p" "$r"; echo; done | median)
verdict() { awk -v x="$1" -v t="$2" 'BEGIN { print (x >= t ? "meets" : "misses") }'; }

mkdir -p bench/results
{
  echo "# Python bridge: the original's sample provider through libpython_provider.so ($STAMP)"
  echo
  echo "\`bash bench/python-bridge.sh\` at $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' with uncommitted changes') on $(nproc) cores, ${DURATION} s per wrk run;"
  echo "dgp-oauth2 1.3.4's \`sample_permission_provider\` module (Python $("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])'))"
  echo "against the Rust \`sample_permission_provider\`, both in worker processes, one SQLite file."
  echo
  echo "| what | median of 3 back-to-back pairs | target | |"
  echo "|---|---|---|---|"
  echo "| authorize, token cache off, Python / RSA-2048 sign ceiling ($SIGN_ALL/s) | $OFF_SIGN× | ≥ 0.7× | $(verdict "$OFF_SIGN" 0.7) |"
  echo "| authorize, token cache off, Rust / RSA-2048 sign ceiling (the host's own share) | $RUST_SIGN× | | |"
  echo "| authorize, token cache off, Python / Rust | $OFF_RUST× | | |"
  echo "| authorize, token cache on, Python / Rust | $ON_RUST× | ≥ 0.9× | $(verdict "$ON_RUST" 0.9) |"
  echo
  echo "Pairs (req/s, Python then Rust), cache off: $(echo "$OFF" | paste -sd ';' | sed 's/;/; /g'); cache on: $(echo "$ON" | paste -sd ';' | sed 's/;/; /g')."
  echo
  echo "One caller, cache on: authorize answers in $LAT_P (Python) and $LAT_R (Rust) on average;"
  echo "one plugin call through \`PluginSet::permissions\` into a worker takes $CALL_P µs (Python) and $CALL_R µs (Rust)."
} >"bench/results/$STAMP.md"
echo "wrote bench/results/$STAMP.md"
cat "bench/results/$STAMP.md"
