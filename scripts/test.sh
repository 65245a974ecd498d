#!/usr/bin/env bash
# THE test command (CI runs it through .ci/run): installs missing test tools
# (scripts/install-test-deps.sh; BERTH_SKIP_INSTALL=1 skips that), then
# formatting, lints, and every test target, including the real-client
# interop tests.
#
#   scripts/test.sh                  # everything
#   scripts/test.sh --test interop   # args replace `--all-targets` in `cargo test`
#
# Then the fuzz targets, 20 s each (scripts/fuzz.sh; BERTH_SKIP_FUZZ=1 skips).
#
# CI=true turns a missing client tool into a test failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
# garage (cargo install) lives here; the S3 tests look it up on PATH.
export PATH="$HOME/.cargo/bin:$PATH"

if [ "${BERTH_SKIP_INSTALL:-}" != 1 ]; then
  bash scripts/install-test-deps.sh
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings

# Two test threads: the interop tests each start a dockerd (vfs storage)
# or another client with private storage; more at once only thrash 2 cores.
echo "== cargo test"
if [ "$#" -eq 0 ]; then set -- --all-targets; fi
RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}" cargo test "$@"

if [ "${BERTH_SKIP_FUZZ:-}" != 1 ]; then
  echo "== fuzz targets"
  bash scripts/fuzz.sh
fi
