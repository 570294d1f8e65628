#!/usr/bin/env bash
# The provider metadata against Authlib's validators (tests/oidc_metadata/validate.py). They
# insist on https for the issuer and every endpoint, so authhost runs with an https external
# address (only the document is read, from its loopback listener; nothing follows the URLs).
# Needs python3-venv and PyPI; fails, never skips, without them.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=$(mktemp -d /tmp/authhost-metadata.XXXXXX)
APID=
cleanup() { [ -n "$APID" ] && kill "$APID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
VENV=$ROOT/tests/oidc_metadata/.venv
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check Authlib==1.3.2
cargo build -q -p authhost
BIN=$ROOT/target/debug/authhost
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" keygen --out "$WORK" >/dev/null 2>&1
cat >"$WORK/authhost.toml" <<TOML
[server]
listen = "127.0.0.1:$PORT"
external_address = "https://auth.example.org"
data_dir = "$WORK"
[database]
url = "sqlite://$WORK/authhost.db?mode=rwc"
[keys]
private_key_file = "$WORK/private.pem"
public_key_file = "$WORK/public.pem"
[plugins]
services = "example:sample_permission_provider"
[clients.app]
redirect_uris = ["https://app.example.org/cb"]
TOML
AUTHHOST_PLUGIN_PATH=$ROOT/target/debug/deps:$ROOT/target/debug AUTHHOST_LOG=warn \
  "$BIN" --config "$WORK/authhost.toml" serve 2>"$WORK/authhost.log" &
APID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/auth/.well-known/openid-configuration" >"$WORK/openid.json" \
  || { cat "$WORK/authhost.log" >&2; exit 1; }
curl -sf "http://127.0.0.1:$PORT/.well-known/oauth-authorization-server/auth" >"$WORK/rfc8414.json"
"$VENV/bin/python" tests/oidc_metadata/validate.py "$WORK/openid.json" "$WORK/rfc8414.json" \
  "https://auth.example.org/auth/"
