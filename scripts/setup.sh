#!/usr/bin/env bash
# Installs what building and testing Eddy needs beyond Rust itself: the
# wasm32-wasip2 target that plugins are built for, libclang (for RocksDB's
# bindings) and cargo-nextest (the test runner, with per-test deadlines).
# Idempotent.
set -euo pipefail
if ! command -v cargo >/dev/null; then
  echo "Rust is not installed: see https://rustup.rs" >&2
  exit 1
fi
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
# RocksDB's Rust bindings are generated with libclang at build time.
if ! ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q 'libclang\.so'; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y --no-install-recommends libclang-dev || {
    $sudo_cmd apt-get update && $sudo_cmd apt-get install -y --no-install-recommends libclang-dev
  }
fi
# The test runner. Built once (a few minutes); with CARGO_TARGET_DIR set (as
# .ci/run sets it) its build is kept there too.
NEXTEST_VERSION=0.9.151
if ! cargo nextest --version 2>/dev/null | grep -q "cargo-nextest $NEXTEST_VERSION"; then
  cargo install cargo-nextest --version "$NEXTEST_VERSION" --locked
fi
# kcat, a Kafka client independent of the JVM, for interoperability checks
# against the broker that scripts/kafka.sh runs.
if ! command -v kcat >/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y --no-install-recommends kcat || {
    $sudo_cmd apt-get update && $sudo_cmd apt-get install -y --no-install-recommends kcat
  }
fi
# Headless Chromium, for the test that loads the server's web console.
if ! command -v chromium >/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y --no-install-recommends chromium || {
    $sudo_cmd apt-get update && $sudo_cmd apt-get install -y --no-install-recommends chromium
  }
fi
