#!/usr/bin/env bash
# Installs what building and testing Eddy needs beyond Rust itself:
# the wasm32-wasip2 target that plugins are built for. Idempotent.
set -euo pipefail
if ! command -v cargo >/dev/null; then
  echo "Rust is not installed: see https://rustup.rs" >&2
  exit 1
fi
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
