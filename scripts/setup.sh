#!/usr/bin/env bash
# Installs the system packages building stormwatch needs, when they are missing. Safe to re-run.
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# llama-cpp-sys-2 builds llama.cpp with cmake and generates its bindings with bindgen (libclang).
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
compgen -G '/usr/lib/llvm-*/lib/libclang.so' >/dev/null || need_apt+=(libclang-dev)

if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install a Rust toolchain (rustup, Rust >= 1.94) and re-run" >&2
  exit 1
fi
