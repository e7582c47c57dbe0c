#!/usr/bin/env bash
# Installs everything the app and its tests need, idempotently (fast when already done).
# Usage: scripts/setup.sh [--test]   (--test adds Chromium and the Playwright packages)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

log() { echo "[setup] $*"; }

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust with rustup (https://rustup.rs) and run this again." >&2
  exit 1
fi

if ! rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# cargo-leptos 0.3.10 is the last version that builds with rustc 1.95 (see TOOLCHAIN.md).
if ! cargo leptos --version 2>/dev/null | grep -q '0\.3\.10'; then
  log "installing cargo-leptos 0.3.10 (takes ~10 minutes once)"
  cargo install cargo-leptos --version 0.3.10 --locked
fi

# The wasm-bindgen CLI must match the wasm-bindgen crate in Cargo.lock exactly;
# cargo-leptos would otherwise try to download one (no internet here).
wb_version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -q "$wb_version"; then
  log "installing wasm-bindgen-cli $wb_version"
  cargo install wasm-bindgen-cli --version "$wb_version" --force
fi

# wasm-opt from npm's binaryen: Debian's is too old and breaks hydration.
if [ ! -x "$TOOLS_DIR/node_modules/.bin/wasm-opt" ]; then
  log "installing binaryen (wasm-opt) from npm"
  mkdir -p "$TOOLS_DIR"
  npm install --prefix "$TOOLS_DIR" --no-audit --no-fund binaryen@132 >/dev/null
fi

# Trunk builds the client-side-rendered UI (Trunk.toml) and the example app. 0.21.14 is the last
# version that builds with rustc 1.95 (see TOOLCHAIN.md); offline it uses the wasm-bindgen and
# wasm-opt above.
if ! trunk --version 2>/dev/null | grep -q '0\.21\.14'; then
  log "installing trunk 0.21.14 (takes ~6 minutes once)"
  cargo install trunk --version 0.21.14 --locked
fi

if [ "$want_test" = 1 ]; then
  if [ ! -x /usr/bin/chromium ]; then
    log "installing Chromium"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -q && apt-get install -y -q chromium
    else
      sudo apt-get update -q && sudo apt-get install -y -q chromium
    fi
  fi
  # Schemathesis (PyPI) fuzzes the REST API against its OpenAPI document (scripts/fuzz-api.sh);
  # openai-chatkit's models check every /chatkit answer (tests/chatkit_conformance.py).
  if ! "$TOOLS_DIR/venv/bin/st" --version 2>/dev/null | grep -q "4.32.5"; then
    log "installing Schemathesis 4.32.5"
    python3 -m venv "$TOOLS_DIR/venv"
    "$TOOLS_DIR/venv/bin/pip" install -q "schemathesis==4.32.5"
  fi
  if ! "$TOOLS_DIR/venv/bin/pip" show openai-chatkit 2>/dev/null | grep -q "^Version: 1.6.5$"; then
    log "installing openai-chatkit 1.6.5 (the reference ChatKit models)"
    "$TOOLS_DIR/venv/bin/pip" install -q "openai-chatkit==1.6.5"
  fi
  # The official MCP Python SDK drives /mcp as an MCP client in the browser tests
  # (end2end/mcp-call.py). openai-agents (from openai-chatkit) pulls some mcp in; pin ours.
  if ! "$TOOLS_DIR/venv/bin/pip" show mcp 2>/dev/null | grep -q "^Version: 2.3.0$"; then
    log "installing mcp 2.3.0 (the MCP Python SDK)"
    "$TOOLS_DIR/venv/bin/pip" install -q "mcp==2.3.0"
  fi
  # HAProxy balances three replicas in the multi-replica tests (tests/balancer.rs), and those
  # tests stop and start a NATS server of their own.
  for tool in haproxy nats-server; do
    if ! command -v "$tool" >/dev/null && [ ! -x "/usr/sbin/$tool" ]; then
      log "installing $tool"
      if [ "$(id -u)" = 0 ]; then
        apt-get install -y -q "$tool" || { apt-get update -q && apt-get install -y -q "$tool"; }
      else
        sudo apt-get install -y -q "$tool" || { sudo apt-get update -q && sudo apt-get install -y -q "$tool"; }
      fi
    fi
  done
  if [ ! -d end2end/node_modules/@playwright/test ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
    log "installing the Playwright packages"
    (cd end2end && npm ci --no-audit --no-fund)
  fi
fi
log "ready"
