#!/usr/bin/env bash
# The Python bridge's own checks and tests, on a machine with Python's development files
# (Debian: python3-dev python3-venv) and PyPI: formats and lints the bridge, builds it, makes the
# test venv (the original's wheel dgp-oauth2==1.3.4 and PyJWT), then runs the integration
# binary's python module (tests/integration/python.rs) with
# real interpreters, modules and worker processes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=$ROOT/plugins/python_bridge
export PYO3_PYTHON=${PYO3_PYTHON:-/usr/bin/python3}
(cd "$DIR" && cargo fmt -- --check)
cargo clippy --manifest-path "$DIR/Cargo.toml" --workspace --all-targets -- -D warnings
# tests/integration/python.rs is compiled only with the feature: the main clippy run misses it.
(cd "$ROOT" && cargo clippy -p authhost-tests --features python --tests -- -D warnings)
bash "$DIR/build.sh"
VENV=${AUTHHOST_TEST_PYTHON_VENV:-$ROOT/target/python-test-venv}
if [ ! -x "$VENV/bin/python" ]; then "$PYO3_PYTHON" -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check dgp-oauth2==1.3.4 PyJWT==2.8.0
# Plugin workers run the authhost binary beside the tests' build.
cargo build -p authhost
AUTHHOST_TEST_PYTHON_BRIDGE=$DIR/target/release AUTHHOST_TEST_PYTHON_VENV=$VENV \
  cargo test -p authhost-tests --features python --test integration python::
