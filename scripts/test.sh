#!/usr/bin/env bash
# The test command: installs what a fresh machine lacks, checks formatting and lints, runs every
# test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

# The end-to-end test drives the real binary in tmux.
if ! command -v tmux >/dev/null 2>&1; then
  echo "test: installing tmux" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq tmux >/dev/null
fi

# Integration tests talk to moto_server, a local AWS API emulator.
if ! command -v moto_server >/dev/null 2>&1; then
  echo "test: installing moto[server]" >&2
  python3 -m pip install --quiet 'moto[server]'
fi

# The analyst's tests run the real default model: the debug binary fetches and verifies it (the
# same build `cargo test` uses, so no second profile is compiled).
cargo run --quiet -- model pull

cargo fmt --check
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --all-targets --quiet -- -D warnings
else
  echo "test: clippy is not installed with this toolchain; skipping lints" >&2
fi
cargo test
