#!/usr/bin/env bash
# Builds the Python bridge: target/release/libpython_provider.so and libpython_extension.so
# under this folder. Needs Python's development files (Debian: python3-dev). The interpreter
# it embeds is PYO3_PYTHON (default /usr/bin/python3, the system's: its libpython is on the
# loader's path); modules and venvs must be of the same major.minor version.
set -euo pipefail
DIR=$(cd "$(dirname "$0")" && pwd)
export PYO3_PYTHON=${PYO3_PYTHON:-/usr/bin/python3}
cargo build --release --workspace --manifest-path "$DIR/Cargo.toml"
ls -1 "$DIR"/target/release/libpython_provider.so "$DIR"/target/release/libpython_extension.so
