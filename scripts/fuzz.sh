#!/usr/bin/env bash
# The long fuzz run: every parser fuzz test with a million inputs each
# (CI runs the same tests with 2,000). A failure prints the seed to replay
# with ALLUXIO_FUZZ_SEED=<seed>.
set -euo pipefail
cd "$(dirname "$0")/.."
export ALLUXIO_FUZZ_ITERATIONS="${ALLUXIO_FUZZ_ITERATIONS:-1000000}"
cargo test --release -p alluxio-common --test fuzz_parsers
cargo test --release -p alluxio-master --test fuzz_journal
cargo test --release -p alluxio-worker --test fuzz_block_records
# The namespace against its model, with many more steps and seeds.
MODEL_STEPS="${MODEL_STEPS:-20000}" MODEL_SEEDS="${MODEL_SEEDS:-20}" \
    cargo test --release -p alluxio-master --test model
MODEL_STEPS="${MODEL_STEPS:-20000}" MODEL_SEEDS="${MODEL_SEEDS:-20}" \
    cargo test --release -p alluxio-worker --test block_store_model
# The same under concurrency: the namespace's histories checked for
# linearizability, the block store's invariants under racing threads.
MODEL_ROUNDS="${MODEL_ROUNDS:-100}" MODEL_SEEDS="${MODEL_SEEDS:-20}" \
    cargo test --release -p alluxio-master --test model_concurrent
MODEL_STEPS="${MODEL_STEPS:-20000}" MODEL_SEEDS="${MODEL_SEEDS:-20}" \
    cargo test --release -p alluxio-worker --test block_store_concurrent
# The coverage-guided cargo-fuzz targets, ten minutes each.
FUZZ_RUNS=-1 FUZZ_SECONDS="${FUZZ_SECONDS:-600}" FUZZ_PROFILE= ./scripts/fuzz-smoke.sh
