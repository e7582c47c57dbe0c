#!/usr/bin/env bash
# The benchmark (SPEC §11): builds the release site and server, then runs `bench`, which starts
# the server on its own database, seeds it, loads it and prints one table (+ bench/out/latest.json).
# Settings: BENCH_SECONDS (10), BENCH_CONCURRENCY (64), PG_ADMIN_URL, BENCH_OUT; BENCH_ONLY=turns|search
# runs that phase alone (it still builds first).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test   # Chromium and Playwright: the page-interactivity measure
source scripts/env.sh
source scripts/postgres.sh
ensure_postgres
trap '[ -n "${PRIVATE_PG_STOP:-}" ] && $PRIVATE_PG_STOP >/dev/null 2>&1; true' EXIT
cargo leptos build --release
node scripts/precompress.mjs target/site/pkg
# The CSR build and the example app, measured as a static host would serve them.
trunk build --release
(cd examples/tasks-client && trunk build --release)
node scripts/precompress.mjs target/csr
node scripts/precompress.mjs examples/tasks-client/dist
cargo build --release --features ssr --bin bench
"$CARGO_TARGET_DIR/release/bench"
