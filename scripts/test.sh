#!/usr/bin/env bash
# Runs every test: formatting and lints, Rust unit + integration tests against a real
# PostgreSQL, then the Playwright suite in Chromium against a real release server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
source scripts/env.sh
source scripts/postgres.sh
ensure_postgres

server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "${PRIVATE_PG_STOP:-}" ] && $PRIVATE_PG_STOP >/dev/null 2>&1
  true
}
trap cleanup EXIT

echo "== cargo fmt / clippy"
cargo fmt --check
cargo clippy --all-targets --features ssr -- -D warnings

echo "== release build"
cargo leptos build --release
node scripts/precompress.mjs target/site/pkg

echo "== Rust tests (PostgreSQL at ${PG_ADMIN_URL%%@*}@…)"
# #[sqlx::test] creates a fresh database per test on this server. Crash, restart and replica
# tests (tests/replicas.rs) run this release binary as separate processes.
CHATKIT_SERVER_BIN="$CARGO_TARGET_DIR/release/chatkit" DATABASE_URL="$PG_ADMIN_URL" \
  cargo test --features ssr -- --test-threads=4

echo "== Playwright (Chromium) against a release server"
e2e_db="chatkit_e2e"
psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $e2e_db WITH (FORCE)" -c "CREATE DATABASE $e2e_db" >/dev/null
export E2E_PORT="${E2E_PORT:-3100}"
export E2E_DATABASE_URL="${PG_ADMIN_URL%/*}/$e2e_db"
export E2E_SERVER_BIN="$CARGO_TARGET_DIR/release/chatkit"
(cd end2end && npx playwright test)
