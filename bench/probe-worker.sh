#!/usr/bin/env bash
# bench/probe-worker.sh [BINARY] [ROUNDS]: the quick probe for issue 11's open target, W2 with
# the permission-token cache on at 64 connections (PROBE_CONNECTIONS=n for another level),
# plugin in a worker process vs in-process.
# Starts two servers from BINARY (default target/release/authhost; build it first) side by side
# on a fresh SQLite database, then alternates 4 s wrk runs against each (ROUNDS pairs, default
# 3) and prints, per pair, both req/s, their ratio, the CPU per request of the worker-mode
# host, of its plugin worker and of the in-process host (from /proc/<pid>/stat), and the
# worker's context switches per request (each is a wake-up: fewer means larger batches). The machine's
# speed drifts by ±30% within minutes: compare two binaries by alternating whole probes, and
# trust CPU per request more than req/s. Only 127.0.0.1; bounded by ROUNDS.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/authhost}")
ROUNDS=${2:-3}
# PROBE_CONNECTIONS: wrk's connections (default 64, the target's level).
CONNS=${PROBE_CONNECTIONS:-64}
THREADS=$(( CONNS < 2 ? 1 : 2 ))
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
export AUTHHOST_PLUGIN_PATH=$(dirname "$BIN")/deps:$(dirname "$BIN")
"$BIN" keygen --out "$WORK" 2>/dev/null
config() { cat > "$WORK/$1.toml" <<TOML
[server]
listen = "127.0.0.1:$2"
external_address = "http://127.0.0.1:$2"
data_dir = "$WORK"
[database]
url = "sqlite://$WORK/probe.db?mode=rwc"
[keys]
private_key_file = "$WORK/private.pem"
[plugins]
services = "example:sample_permission_provider"
TOML
}
config worker 18190
config inproc 18191
"$BIN" --config "$WORK/worker.toml" migrate 2>/dev/null
AUTHHOST_LOG=warn "$BIN" --config "$WORK/worker.toml" serve 2>"$WORK/worker.log" &
HOST=$!; PIDS+=("$HOST")
AUTHHOST_PLUGINS__ISOLATION=in_process AUTHHOST_LOG=warn "$BIN" --config "$WORK/inproc.toml" serve 2>"$WORK/inproc.log" &
INPROC=$!; PIDS+=("$INPROC")
until curl -sf 127.0.0.1:18190/readyz >/dev/null && curl -sf 127.0.0.1:18191/readyz >/dev/null; do sleep 0.05; done
TOKEN=$("$BIN" --config "$WORK/worker.toml" token --email probe@example.org 2>/dev/null)
WORKER=$(pgrep -P "$HOST" | head -n1)
url() { echo "http://127.0.0.1:$1/auth/authorize?service=example"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Context switches of every thread of a process, so far.
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
for port in 18190 18191; do wrk -t"$THREADS" -c"$CONNS" -d2s -H "auth-token: $TOKEN" "$(url $port)" >/dev/null; done
for r in $(seq 1 "$ROUNDS"); do
  h0=$(ticks "$HOST"); w0=$(ticks "$WORKER"); c0=$(switches "$WORKER")
  a=$(wrk -t"$THREADS" -c"$CONNS" -d4s -H "auth-token: $TOKEN" "$(url 18190)")
  h1=$(ticks "$HOST"); w1=$(ticks "$WORKER"); c1=$(switches "$WORKER"); i0=$(ticks "$INPROC")
  b=$(wrk -t"$THREADS" -c"$CONNS" -d4s -H "auth-token: $TOKEN" "$(url 18191)")
  i1=$(ticks "$INPROC")
  python3 - "$a" "$b" "$((h1 - h0))" "$((w1 - w0))" "$((i1 - i0))" "$(getconf CLK_TCK)" "$r" "$((c1 - c0))" <<'PY'
import re, sys
a, b, host, worker, inproc, tick, r, switches = sys.argv[1:]
def stats(out):
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]), int(re.search(r"(\d+) requests in", out)[1])
(ra, na), (rb, nb) = stats(a), stats(b)
us = lambda t, n: int(t) / int(tick) * 1e6 / n
print(f"pair {r}: worker {ra:,.0f} req/s, in-process {rb:,.0f} req/s, ratio {ra / rb:.3f}; CPU per request: "
      f"host {us(host, na):.1f} + worker {us(worker, na):.1f} us vs in-process {us(inproc, nb):.1f} us; "
      f"worker context switches {int(switches) / na:.2f} per request")
PY
done
