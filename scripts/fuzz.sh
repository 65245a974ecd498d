#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/, libFuzzer through cargo-fuzz)
# for a bounded time each, starting from the seed corpora in
# fuzz/corpus/<target>/ (left unchanged: new inputs go to a scratch copy).
# A crash fails the run; its input is kept under fuzz/artifacts/<target>/
# and must become a unit test (docs/reliability.md, "Fuzzing").
#
#   scripts/fuzz.sh                 # every target, FUZZ_SECONDS (20) each
#   FUZZ_SECONDS=300 scripts/fuzz.sh manifest endpoint
#
# cargo-fuzz needs a nightly compiler; this project has only stable, so the
# build runs with RUSTC_BOOTSTRAP=1 and without a sanitizer (`-s none`):
# panics, failed assertions, overflow checks (debug assertions stay on) and
# aborts are found; memory errors in unsafe code are not (berth has none of
# its own). The targets' build is its own workspace (fuzz/target/).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-20}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cd fuzz/fuzz_targets && ls -- *.rs | sed 's/\.rs$//')
fi

echo "== cargo fuzz build (${#targets[@]} targets)"
(cd fuzz && cargo fuzz build -s none)

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=0
printf '%-14s %12s %8s %s\n' target executions corpus result
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "fuzz/artifacts/$t"
  log="$scratch/$t.log"
  if (cd fuzz && cargo fuzz run -s none "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="artifacts/$t/") >"$log" 2>&1; then
    result=ok
  else
    result=CRASH
    failed=1
  fi
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  corpus="$(ls "$scratch/$t" | wc -l)"
  printf '%-14s %12s %8s %s\n' "$t" "$execs" "$corpus" "$result"
  if [ "$result" = CRASH ]; then
    grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -20 || true
  fi
done
exit "$failed"
