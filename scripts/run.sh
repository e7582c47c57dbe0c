#!/usr/bin/env bash
# Runs the app on http://127.0.0.1:3000 with embedded defaults (see README "Configuration").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
cargo leptos build --release
node scripts/precompress.mjs target/site/pkg
export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-target/site}"
exec "$CARGO_TARGET_DIR/release/chatkit"
