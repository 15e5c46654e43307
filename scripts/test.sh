#!/usr/bin/env bash
# Runs every nats-mini test, installing what the tests need first (a Python venv with the
# reference nats-server and nats-py; Rust crates come through cargo). Works on a fresh machine.
#
#   scripts/test.sh              # everything (what CI runs)
#   FUZZ_SECONDS=120 scripts/test.sh   # a longer fuzz run
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export CARGO_TERM_COLOR=never
LOG="$(mktemp -d)/test.log"
trap 'echo "full log: $LOG"' EXIT

step() { printf '\n=== %s ===\n' "$*"; }

step "installing test dependencies"
bash scripts/test-deps.sh

step "building the release binary (the differential and nats-py suites run it)"
cargo build --release -p nats-mini --bin nats-mini
export NATS_MINI_BIN="$REPO/target/release/nats-mini"

step "cargo test: unit, property and end-to-end tests"
cargo test --workspace 2>&1 | tee -a "$LOG"

step "pytest: differential suite against nats-server, nats-py smoke tests"
"$REPO/.venv/bin/python" -m pytest tests/py -q -p no:cacheprovider 2>&1 | tee -a "$LOG"

step "fuzzing the parser (bounded)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}" 2>&1 | tee -a "$LOG"

# One closing line with the totals of every runner above.
passed=$(grep -Eo '[0-9]+ passed' "$LOG" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$LOG" | awk '{s+=$1} END {print s+0}')
echo
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
