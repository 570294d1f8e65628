#!/usr/bin/env bash
# bench/run.sh: authhost beside the original dgp-oauth2 1.3.4 and this machine's ceilings, in one
# run, only against 127.0.0.1, bounded in time (about 15 minutes with the defaults).
#
#   bench/run.sh                      # full run, writes bench/results/<date>.md and .png
#   BENCH_DURATION=2 bench/run.sh     # shorter wrk runs (seconds per run, default 5)
#   BENCH_CONNECTIONS="16 64" ...     # connection levels (default "1 16 64 256")
#   BENCH_SKIP_1M=1 ...               # skip the 1M-user database
#   BENCH_NAME=after-x ...            # results file name (default: the date)
#   BENCH_SKIP_PYTHON=1 ...           # skip the Python bridge rows (bench/python-bridge.sh,
#                                     # which needs python3-dev; results in <name>-python-bridge.md)
#   BENCH_SKIP_OIDC=1 ...             # skip the OpenID token endpoint rows (bench/oidc.sh;
#                                     # results in <name>-oidc.md)
#
# Installs what it needs: wrk (Debian), and a venv in bench/.venv with the original's pinned
# stack, gunicorn and matplotlib (PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/bench/work
RESULTS=$ROOT/bench/results
DURATION=${BENCH_DURATION:-5}
CONNECTIONS=${BENCH_CONNECTIONS:-"1 16 64 256"}
PORT_A=18080 PORT_O=18081 PORT_W0=18082 PORT_W0B=18083 PORT_I=18084
# BENCH_NAME names the results file (default: the date; a second run on one day needs its own).
STAMP=${BENCH_NAME:-$(date -u +%Y-%m-%d)}
rm -rf "$WORK" && mkdir -p "$WORK/raw" "$RESULTS"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
say() { printf '\n== %s\n' "$*"; }

say "tools"
if ! command -v wrk >/dev/null; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; fi
PY=$ROOT/bench/.venv/bin/python
if [ ! -x "$PY" ]; then python3 -m venv "$ROOT/bench/.venv"; fi
"$PY" -m pip install -q dgp-oauth2==1.3.4 Flask==3.0.0 Werkzeug==3.0.1 Authlib==1.2.1 PyJWT==2.8.0 \
  SQLAlchemy==2.0.23 Flask-Cors Flask-Jsonpify cachelib gunicorn cryptography matplotlib
for port in $PORT_A $PORT_O $PORT_W0 $PORT_W0B $PORT_I; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "port $port is taken" >&2; exit 1; fi
done

say "build (release)"
cargo build --release -q -p authhost -p authhost-bench
BIN=$ROOT/target/release/authhost
export AUTHHOST_PLUGIN_PATH=$ROOT/target/release/deps:$ROOT/target/release

say "keys and user bases"
"$BIN" keygen --out "$WORK/keys" 2>/dev/null
export PRIVATE_KEY PUBLIC_KEY
PRIVATE_KEY=$(cat "$WORK/keys/private.pem")
PUBLIC_KEY=$(cat "$WORK/keys/public.pem")
write_config() { # db-file
  cat > "$WORK/authhost.toml" <<EOF
[server]
listen = "127.0.0.1:$PORT_A"
external_address = "http://127.0.0.1:$PORT_A"
data_dir = "$WORK"
[database]
url = "sqlite://$1?mode=rwc"
[plugins]
services = "example:sample_permission_provider"
EOF
}
write_config "$WORK/authhost-1k.db"
"$BIN" --config "$WORK/authhost.toml" migrate 2>/dev/null
"$PY" bench/seed.py authhost "$WORK/authhost-1k.db" 1000
if [ -z "${BENCH_SKIP_1M:-}" ]; then
  write_config "$WORK/authhost-1m.db"
  "$BIN" --config "$WORK/authhost.toml" migrate 2>/dev/null
  "$PY" bench/seed.py authhost "$WORK/authhost-1m.db" 1000000
fi
"$PY" bench/seed.py original "$WORK/original.db" 1000

start_authhost() { # db-file
  write_config "$1"
  local t0 t1
  t0=$(date +%s%N)
  AUTHHOST_LOG=warn "$BIN" --config "$WORK/authhost.toml" serve 2>"$WORK/authhost.log" &
  APID=$!
  PIDS+=("$APID")
  until curl -sf "http://127.0.0.1:$PORT_A/readyz" >/dev/null; do sleep 0.005; done
  t1=$(date +%s%N)
  STARTUP_MS=$(( (t1 - t0) / 1000000 ))
}
stop_authhost() { kill "$APID"; wait "$APID" 2>/dev/null || true; }

say "start authhost, the original (gunicorn, 5 sync workers = 2 x cores + 1) and the W0 ceiling"
start_authhost "$WORK/authhost-1k.db"
echo "authhost ready in ${STARTUP_MS} ms"
TOKEN_A=$("$BIN" --config "$WORK/authhost.toml" token --email user1@bench.example 2>/dev/null)
TOKEN_O=$("$PY" bench/original_token.py)
(
  cd bench
  EXTERNAL_ADDRESS="http://127.0.0.1:$PORT_O" DATABASE_URL="sqlite:///$WORK/original.db" \
  ALLOWED_SERVICES="example:sample_permission_provider" \
  exec "$ROOT/bench/.venv/bin/gunicorn" -w 5 -b "127.0.0.1:$PORT_O" --log-level warning original_app:app
) 2>"$WORK/original.log" &
OPID=$!
PIDS+=("$OPID")
until curl -sf "http://127.0.0.1:$PORT_O/auth/public-key" >/dev/null; do sleep 0.1; done
W1_SIZE=$(curl -s -H "auth-token: $TOKEN_A" "http://127.0.0.1:$PORT_A/auth/check" | wc -c)
# W0 answers through authhost's own accept loop and HTTP settings; W0B from plain hyper.
"$ROOT/target/release/bench-ceiling" $PORT_W0 "$W1_SIZE" &
W0PID=$!
PIDS+=("$W0PID")
"$ROOT/target/release/bench-ceiling" $PORT_W0B "$W1_SIZE" bare &
PIDS+=("$!")
sleep 0.3

# Sanity: both systems answer each workload as expected before anything is measured.
curl -s -H "auth-token: $TOKEN_A" "http://127.0.0.1:$PORT_A/auth/check" | grep -q '"authenticated":true'
curl -s -H "auth-token: $TOKEN_O" "http://127.0.0.1:$PORT_O/auth/check" | grep -q '"authenticated": true'
curl -s -H "auth-token: $TOKEN_A" "http://127.0.0.1:$PORT_A/auth/authorize?service=example" | grep -q 'provider-token'
curl -s -H "auth-token: $TOKEN_O" "http://127.0.0.1:$PORT_O/auth/authorize?service=example" | grep -q 'provider-token'

rss_kb() { # pid: RSS of it and its children, in kB
  ps -o rss= -p "$1" --ppid "$1" 2>/dev/null | awk '{s+=$1} END {print s+0}'
}
run_wrk() { # label system url conns [header]
  local label=$1 system=$2 url=$3 conns=$4 header=${5:-} pid threads out
  threads=$(( conns < 2 ? 1 : 2 ))
  out="$WORK/raw/$label-$system-$conns.txt"
  case $system in authhost) pid=${RSS_PID:-$APID} ;; original) pid=$OPID ;; ceiling) pid=$W0PID ;; *) pid= ;; esac
  if [ -n "$header" ]; then
    wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency -H "$header" "$url" >"$out" 2>&1
  else
    wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency "$url" >"$out" 2>&1
  fi
  echo "rss_kb $( [ -n "$pid" ] && rss_kb "$pid" || echo 0)" >>"$out"
  printf '%-4s %-9s c=%-4s %s\n' "$label" "$system" "$conns" "$(grep Requests/sec "$out" | awk '{print $2}') req/s"
}

# W5 (token exchange) against W2 (authorize) on the running server, three back-to-back pairs at
# 64 connections: the exchange should cost what authorize costs.
exchange_pairs() { # exchange-label authorize-label
  mkdir -p "$WORK/raw/exchange"
  curl -s -X POST -d "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=$TOKEN_A&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&audience=example" \
    "http://127.0.0.1:$PORT_A/auth/token" | grep -q '"access_token"'
  for i in 1 2 3; do
    TOKEN=$TOKEN_A wrk -t2 -c64 -d"${DURATION}s" -s bench/exchange.lua "http://127.0.0.1:$PORT_A/auth/token" >"$WORK/raw/exchange/$1-$i.txt" 2>&1
    wrk -t2 -c64 -d"${DURATION}s" -H "auth-token: $TOKEN_A" "http://127.0.0.1:$PORT_A/auth/authorize?service=example" >"$WORK/raw/exchange/$2-$i.txt" 2>&1
    printf 'pair %s: %s %s  %s %s req/s\n' "$i" "$1" "$(awk '/Requests\/sec/ {print $2}' "$WORK/raw/exchange/$1-$i.txt")" \
      "$2" "$(awk '/Requests\/sec/ {print $2}' "$WORK/raw/exchange/$2-$i.txt")"
  done
}

say "load (wrk, ${DURATION}s per run)"
for c in $CONNECTIONS; do
  run_wrk W0 ceiling "http://127.0.0.1:$PORT_W0/" "$c"
  run_wrk W0B bare "http://127.0.0.1:$PORT_W0B/" "$c"
  for sys in authhost original; do
    if [ $sys = authhost ]; then port=$PORT_A; tok=$TOKEN_A; else port=$PORT_O; tok=$TOKEN_O; fi
    run_wrk W1 $sys "http://127.0.0.1:$port/auth/check" "$c" "auth-token: $tok"
    run_wrk W2 $sys "http://127.0.0.1:$port/auth/authorize?service=example" "$c" "auth-token: $tok"
    run_wrk W3 $sys "http://127.0.0.1:$port/auth/public-key" "$c"
    run_wrk W4 $sys "http://127.0.0.1:$port/auth/check" "$c"
  done
done

# W1/W0 is a ratio of two cells a few minutes apart on a shared machine; three back-to-back
# pairs at 64 connections give the verdict (median of the three ratios) a steadier footing.
say "W1/W0 pairs at 64 connections"
mkdir -p "$WORK/raw/pairs"
for i in 1 2 3; do
  wrk -t2 -c64 -d"${DURATION}s" "http://127.0.0.1:$PORT_W0/" >"$WORK/raw/pairs/W0-$i.txt" 2>&1
  wrk -t2 -c64 -d"${DURATION}s" -H "auth-token: $TOKEN_A" "http://127.0.0.1:$PORT_A/auth/check" >"$WORK/raw/pairs/W1-$i.txt" 2>&1
  printf 'pair %s: W0 %s  W1 %s req/s\n' "$i" "$(awk '/Requests\/sec/ {print $2}' "$WORK/raw/pairs/W0-$i.txt")" \
    "$(awk '/Requests\/sec/ {print $2}' "$WORK/raw/pairs/W1-$i.txt")"
done

say "RSA-2048 ceiling (aws-lc-rs, one core and all)"
"$ROOT/target/release/bench-rsa" 2 | tee "$WORK/raw/rsa.txt"

say "one plugin call, in the host and in a worker process (µs, one caller)"
"$ROOT/target/release/bench-plugin-call" "$BIN" "$ROOT/target/release/deps" | tee "$WORK/raw/plugin-call.txt"

say "W2 with the permission-token cache off (every authorize calls the plugin and signs)"
stop_authhost
AUTHHOST_TOKENS__PERMISSION_TOKEN_CACHE=false start_authhost "$WORK/authhost-1k.db"
for c in 16 64; do
  run_wrk W2N authhost "http://127.0.0.1:$PORT_A/auth/authorize?service=example" "$c" "auth-token: $TOKEN_A"
done
exchange_pairs W5N W2N
stop_authhost
AUTHHOST_PLUGINS__ISOLATION=in_process AUTHHOST_TOKENS__PERMISSION_TOKEN_CACHE=false start_authhost "$WORK/authhost-1k.db"
for c in 16 64; do
  run_wrk W2NI authhost "http://127.0.0.1:$PORT_A/auth/authorize?service=example" "$c" "auth-token: $TOKEN_A"
done

# W2 with the cache on calls the plugin on every request: its cost in a worker process is
# measured against an in-process server running beside it, in back-to-back pairs (as W1/W0).
say "W2 with the cache on: plugin in a worker process vs in-process, back-to-back at 64 connections"
stop_authhost
start_authhost "$WORK/authhost-1k.db"
sed "s/127.0.0.1:$PORT_A/127.0.0.1:$PORT_I/g" "$WORK/authhost.toml" >"$WORK/authhost-i.toml"
AUTHHOST_PLUGINS__ISOLATION=in_process AUTHHOST_LOG=warn "$BIN" --config "$WORK/authhost-i.toml" serve 2>"$WORK/authhost-i.log" &
IPID=$!
PIDS+=("$IPID")
until curl -sf "http://127.0.0.1:$PORT_I/readyz" >/dev/null; do sleep 0.005; done
for c in 16 64; do
  RSS_PID=$IPID run_wrk W2I authhost "http://127.0.0.1:$PORT_I/auth/authorize?service=example" "$c" "auth-token: $TOKEN_A"
done
mkdir -p "$WORK/raw/w2pairs"
for i in 1 2 3; do
  wrk -t2 -c64 -d"${DURATION}s" -H "auth-token: $TOKEN_A" "http://127.0.0.1:$PORT_A/auth/authorize?service=example" >"$WORK/raw/w2pairs/W2-$i.txt" 2>&1
  wrk -t2 -c64 -d"${DURATION}s" -H "auth-token: $TOKEN_A" "http://127.0.0.1:$PORT_I/auth/authorize?service=example" >"$WORK/raw/w2pairs/W2I-$i.txt" 2>&1
  printf 'pair %s: worker %s  in-process %s req/s\n' "$i" "$(awk '/Requests\/sec/ {print $2}' "$WORK/raw/w2pairs/W2-$i.txt")" \
    "$(awk '/Requests\/sec/ {print $2}' "$WORK/raw/w2pairs/W2I-$i.txt")"
done
kill "$IPID"; wait "$IPID" 2>/dev/null || true
exchange_pairs W5 W2

# W6: login starts (GET login/github, never finished) against W1 on one server with GitHub
# configured (the original's GITHUB_KEY/GITHUB_SECRET; a start never calls GitHub), in
# back-to-back pairs. A start seals the login into its cookie and writes nothing to the
# database; bench/login-start.sh compares two binaries (before and after a change) this way.
say "W6 login start vs W1 check, back-to-back at 64 connections"
stop_authhost
GITHUB_KEY=bench-client GITHUB_SECRET=bench-secret start_authhost "$WORK/authhost-1k.db"
test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT_A/auth/login/github")" = 302
mkdir -p "$WORK/raw/login"
for i in 1 2 3; do
  wrk -t2 -c64 -d"${DURATION}s" "http://127.0.0.1:$PORT_A/auth/login/github" >"$WORK/raw/login/W6-$i.txt" 2>&1
  wrk -t2 -c64 -d"${DURATION}s" -H "auth-token: $TOKEN_A" "http://127.0.0.1:$PORT_A/auth/check" >"$WORK/raw/login/W1-$i.txt" 2>&1
  printf 'pair %s: login start %s  check %s req/s\n' "$i" "$(awk '/Requests\/sec/ {print $2}' "$WORK/raw/login/W6-$i.txt")" \
    "$(awk '/Requests\/sec/ {print $2}' "$WORK/raw/login/W1-$i.txt")"
done

if [ -z "${BENCH_SKIP_1M:-}" ]; then
  say "W1 on 1M users"
  stop_authhost
  start_authhost "$WORK/authhost-1m.db"
  TOKEN_A=$("$BIN" --config "$WORK/authhost.toml" token --email user1@bench.example 2>/dev/null)
  for c in 1 64; do
    run_wrk W1M authhost "http://127.0.0.1:$PORT_A/auth/check" "$c" "auth-token: $TOKEN_A"
  done
fi

say "start-up to ready, shipped plugins (median of 5)"
write_config "$WORK/authhost-1k.db"
cat >>"$WORK/authhost.toml" <<EOF
extensions = "sample_extension;audit_log"
EOF
stop_authhost
STARTS=()
for _ in 1 2 3 4 5; do
  start_authhost "$WORK/authhost-1k.db"
  STARTS+=("$STARTUP_MS")
  stop_authhost
done
printf '%s\n' "${STARTS[@]}" | sort -n | sed -n 3p >"$WORK/raw/startup.txt"
echo "start-up: $(cat "$WORK/raw/startup.txt") ms"

say "report"
"$PY" bench/report.py "$WORK/raw" "$RESULTS/$STAMP" "$DURATION"
echo "wrote $RESULTS/$STAMP.md and $RESULTS/$STAMP.png"

if [ -z "${BENCH_SKIP_PYTHON:-}" ]; then
  say "the original's sample provider through the Python bridge"
  BENCH_NAME=$STAMP BENCH_DURATION=$DURATION bash bench/python-bridge.sh
fi

if [ -z "${BENCH_SKIP_OIDC:-}" ]; then
  say "the OpenID Provider's token endpoint (code and refresh grants)"
  BENCH_NAME=$STAMP BENCH_DURATION=$DURATION bash bench/oidc.sh
fi
