#!/usr/bin/env bash
# The coverage-guided fuzz run CI makes: every cargo-fuzz target in fuzz/
# built with AddressSanitizer and libFuzzer's coverage instrumentation,
# then fed FUZZ_RUNS inputs each (20,000 by default, or FUZZ_SECONDS, a
# minute, whichever ends first) grown from the valid inputs the
# workspace's own fuzz tests write as seeds
# (alluxio_testkit::fuzz::save_seeds). A crash or a failed property stops
# the run and leaves the input in fuzz/artifacts/<target>/ (replay it with
# `cargo fuzz run <target> <file>`). scripts/fuzz.sh runs the same targets
# for longer. Needs cargo-fuzz (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${FUZZ_RUNS:-20000}"
# A minute at most per target: unoptimised, the YAML parser behind the
# config target takes 20,000 inputs in six.
seconds="${FUZZ_SECONDS:-60}"
# The short run builds unoptimised (4.5 minutes cold on 2 cores, against
# 10 optimised; the minute's cap bounds the slower targets); scripts/fuzz.sh
# sets FUZZ_PROFILE= for cargo-fuzz's default, optimised with debug
# assertions.
profile="${FUZZ_PROFILE---dev}"
seeds="$PWD/target/fuzz-seeds"

# The seeds: the valid inputs of the mutation-fuzz tests.
rm -rf "$seeds"
export ALLUXIO_FUZZ_SEEDS_DIR="$seeds" ALLUXIO_FUZZ_ITERATIONS=1
cargo test -q -p alluxio-common --test fuzz_parsers
cargo test -q -p alluxio-master --test fuzz_journal
cargo test -q -p alluxio-worker --test fuzz_block_records
cargo test -q -p alluxio-csi --test fuzz_paths
unset ALLUXIO_FUZZ_SEEDS_DIR ALLUXIO_FUZZ_ITERATIONS

# cargo-fuzz passes -Z flags (the sanitizer); the machine has one stable
# toolchain, whose compiler takes them under RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
cargo fuzz build $profile
for target in $(cargo fuzz list); do
    if [ ! -d "$seeds/$target" ]; then
        echo "fuzz target $target has no seeds in $seeds (which test writes them?)" >&2
        exit 1
    fi
    corpus="$PWD/target/fuzz-corpus/$target"
    mkdir -p "$corpus"
    log="$PWD/target/fuzz-$target.log"
    if ! cargo fuzz run $profile "$target" "$corpus" "$seeds/$target" -- \
        -runs="$runs" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    echo "$target: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') inputs, $(grep -E '^stat::peak_rss_mb' "$log" | awk '{print $2}') MB peak"
done
