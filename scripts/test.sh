#!/usr/bin/env bash
# Runs every test: formatting and lints, Rust unit + integration tests against a real
# PostgreSQL, then the Playwright suite in Chromium against a real release server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
source scripts/env.sh
source scripts/postgres.sh
ensure_postgres

# NATS for the multi-replica tests: the machine's on 127.0.0.1:4222 when it runs, else one of
# our own on a private port (nats-server from scripts/setup.sh).
nats_pid=""
if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  export TEST_NATS_URL="nats://127.0.0.1:4222"
else
  "$(command -v nats-server || echo /usr/sbin/nats-server)" -a 127.0.0.1 -p 4333 >/dev/null 2>&1 &
  nats_pid=$!
  export TEST_NATS_URL="nats://127.0.0.1:4333"
fi
export E2E_NATS_URL="$TEST_NATS_URL"

server_pid=""
cleanup() {
  [ -n "$nats_pid" ] && kill "$nats_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "${PRIVATE_PG_STOP:-}" ] && $PRIVATE_PG_STOP >/dev/null 2>&1
  true
}
trap cleanup EXIT

echo "== cargo fmt / clippy"
cargo fmt --check
cargo clippy --all-targets --features ssr -- -D warnings
# The client stubs as a caller's own server compiles them (reqwest transport), and such a
# server (leptos/ssr, leptos_axum) registers none of our functions (examples/ssr-caller).
cargo clippy --lib --no-default-features --features client -- -D warnings
# (Its own target directory: its build of chatkit, with other features, must not replace ours.)
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/ssr-caller" cargo run --quiet --manifest-path examples/ssr-caller/Cargo.toml

echo "== release build"
cargo leptos build --release
node scripts/precompress.mjs target/site/pkg

# The suite's browser tests call the server on E2E_PORT from two other origins: the Trunk CSR
# build of the chat UI and the example app (feature `client`), both built to call that server.
export E2E_PORT="${E2E_PORT:-3100}"
echo "== CSR build (Trunk) and the example app, calling http://127.0.0.1:$E2E_PORT"
CHATKIT_SERVER_URL="http://127.0.0.1:$E2E_PORT" trunk build --release
(cd examples/tasks-client && CHATKIT_SERVER_URL="http://127.0.0.1:$E2E_PORT" trunk build --release)

echo "== Rust tests (PostgreSQL at ${PG_ADMIN_URL%%@*}@…)"
# #[sqlx::test] creates a fresh database per test on this server. Crash, restart and replica
# tests (tests/replicas.rs) run this release binary as separate processes.
CHATKIT_SERVER_BIN="$CARGO_TARGET_DIR/release/chatkit" DATABASE_URL="$PG_ADMIN_URL" \
  cargo test --features ssr -- --test-threads=4

echo "== Schemathesis: the REST API against its OpenAPI document"
fuzz_db="chatkit_fuzz"
psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $fuzz_db WITH (FORCE)" -c "CREATE DATABASE $fuzz_db" >/dev/null
ADDR=127.0.0.1:3250 DATABASE_URL="${PG_ADMIN_URL%/*}/$fuzz_db" DATA_DIR="$(mktemp -d)" \
  AUTH_RATE_PER_MINUTE_IP=100000 SEND_RATE_PER_MINUTE=100000 WRITE_RATE_PER_MINUTE=100000 \
  RUST_LOG=warn "$CARGO_TARGET_DIR/release/chatkit" &
server_pid=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:3250/readyz >/dev/null && break; sleep 0.2; done
FUZZ_EXAMPLES=100 scripts/fuzz-api.sh http://127.0.0.1:3250
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
server_pid=""

echo "== Playwright (Chromium) against a release server"
e2e_db="chatkit_e2e"
psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $e2e_db WITH (FORCE)" -c "CREATE DATABASE $e2e_db" >/dev/null
export E2E_DATABASE_URL="${PG_ADMIN_URL%/*}/$e2e_db"
# The three-replica test's own database: no other server's sweeper may take its turns over.
psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS ${e2e_db}_replicas WITH (FORCE)" -c "CREATE DATABASE ${e2e_db}_replicas" >/dev/null
export E2E_REPLICAS_DATABASE_URL="${PG_ADMIN_URL%/*}/${e2e_db}_replicas"
export E2E_SERVER_BIN="$CARGO_TARGET_DIR/release/chatkit"
(cd end2end && npx playwright test)
