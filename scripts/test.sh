#!/usr/bin/env bash
# THE test command (CI runs it through .ci/run): installs missing test tools
# (scripts/install-test-deps.sh; BERTH_SKIP_INSTALL=1 skips that), then
# formatting, lints, and every test target, including the real-client
# interop tests.
#
#   scripts/test.sh                  # everything
#   scripts/test.sh --test interop   # args replace `--all-targets` in `cargo test`
#
# Then the fuzz targets, 10 s each here (scripts/fuzz.sh, FUZZ_SECONDS;
# BERTH_SKIP_FUZZ=1 skips).
#
# Every tool is installed above, so a missing one is a failure here, never a
# silent early return counted as ok: this script exports BERTH_REQUIRE_TOOLS=1
# (tests/common/procs.rs `in_ci()`), as CI=true does. Run `cargo test` by
# hand to skip the tests whose tools are absent.
set -euo pipefail
export BERTH_REQUIRE_TOOLS="${BERTH_REQUIRE_TOOLS:-1}"
cd "$(dirname "$0")/.."
# garage (cargo install) lives here; the S3 tests look it up on PATH.
export PATH="$HOME/.cargo/bin:$PATH"
# A fresh CI clone gains nothing from incremental artifacts: they only double
# the target directory's size on disk.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi
# A full disk fails the build in the linker with odd errors: say it up front.
echo "== disk free where the build runs: $(df -h . | awk 'NR==2 {print $4}')"

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
  FUZZ_SECONDS="${FUZZ_SECONDS:-10}" bash scripts/fuzz.sh
fi
