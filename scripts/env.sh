# Shared environment for the project's scripts (sourced, not run).
# One target dir for every build (server, WASM, tests, benchmark): builds are slow on 2 cores.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/chatkit/target}"
export TOOLS_DIR="${TOOLS_DIR:-$HOME/.cache/chatkit/tools}"
export PATH="$TOOLS_DIR/node_modules/.bin:$HOME/.cargo/bin:$PATH"
