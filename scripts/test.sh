#!/usr/bin/env bash
# Installs what the tests need (idempotently) and runs every test.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

# A real S3 server for the S3 tests: moto's server from PyPI.
if ! command -v moto_server >/dev/null 2>&1; then
    python3 -m pip install --quiet "moto[server]"
fi

# pyspark reads a Parquet dataset through a CSI volume (Spark needs Java 17+).
if ! python3 -c "import pyspark, pyarrow" >/dev/null 2>&1; then
    python3 -m pip install --quiet pyspark pyarrow
fi
if ! command -v java >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null
fi

# A real Prometheus server scrapes the simulated cluster in the operator tests.
if ! command -v prometheus >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# The container image is built with podman on a base image made with
# debootstrap (scripts/base-image.sh); objcopy strips the binaries; openssl
# makes the test API server's certificate for in-cluster clients in pods.
if ! command -v podman >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1 \
    || ! command -v objcopy >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman buildah debootstrap binutils openssl >/dev/null
fi

# The durability test records a process's file-system calls with strace.
if ! command -v strace >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace >/dev/null
fi

# The partition tests of fault-tolerant masters build network namespaces
# with veth pairs and a bridge (iproute2's `ip`).
if ! command -v ip >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 >/dev/null
fi

# Coverage-guided fuzzing (scripts/fuzz-smoke.sh) with cargo-fuzz and
# libFuzzer (built from source by libfuzzer-sys; no LLVM install needed).
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz --version 0.13.2
fi

# FUSE tests mount for real through /dev/fuse (as root; no libfuse needed).
if [ ! -e /dev/fuse ]; then
    modprobe fuse 2>/dev/null || true
fi

# A current kubectl and helm (the tests run the real ones against the
# test API server and the chart).
PATH="$(./scripts/install-kube-tools.sh):$PATH"
export PATH

# Under CI a missing prerequisite fails the tests instead of skipping them.
export CI="${CI:-1}"

# A build from scratch gains nothing from incremental compilation, whose
# caches beside target/debug grew to tens of GB here (a full disk).
export CARGO_INCREMENTAL=0

cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets
# Every cargo-fuzz target, 20,000 inputs or a minute each (scripts/fuzz.sh
# runs long).
./scripts/fuzz-smoke.sh
# HDFS support is behind a feature; keep it compiling.
cargo check -p alluxio-ufs --features hdfs
