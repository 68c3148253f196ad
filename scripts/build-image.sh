#!/usr/bin/env bash
# Builds the alluxio-rs image (images/Containerfile) with podman.
#
#   scripts/build-image.sh                      # cargo build --profile dist, then the
#                                               # `prebuilt` target from those binaries
#   scripts/build-image.sh --binaries DIR       # package binaries already built in DIR
#                                               # (the tests pass target/debug)
#   scripts/build-image.sh --from-source        # the multi-stage build (needs the
#                                               # rust:1-slim-bookworm image and RUN)
#   --tag NAME      image name (default ghcr.io/alluxio-rs/alluxio:<crate version>)
#   --size-report F write the image's size (uncompressed and gzip-compressed) as JSON to F
#
# Makes the base image first when it is missing (scripts/base-image.sh).
# Prints the image name on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
tag="ghcr.io/alluxio-rs/alluxio:${version}"
binaries=""
from_source=0
size_report=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binaries) binaries="$2"; shift 2 ;;
        --from-source) from_source=1; shift ;;
        --tag) tag="$2"; shift 2 ;;
        --size-report) size_report="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

./scripts/base-image.sh >/dev/null

if [ "$from_source" = 1 ]; then
    podman build --file images/Containerfile --build-arg "VERSION=${version}" \
        --tag "$tag" . >&2
else
    if [ -z "$binaries" ]; then
        cargo build --profile dist --locked -p alluxio-cli -p alluxio-operator -p alluxio-csi >&2
        binaries=target/dist
    fi
    # Stage what the `prebuilt` stage copies; debug info is stripped (the
    # release profile keeps line tables for backtraces, an image does not
    # need them).
    rm -rf target/image
    mkdir -p target/image/bin
    for bin in alluxio alluxio-operator alluxio-csi; do
        objcopy --strip-debug "$binaries/$bin" "target/image/bin/$bin"
    done
    cp /etc/ssl/certs/ca-certificates.crt target/image/ca-certificates.crt
    podman build --file images/Containerfile --target prebuilt \
        --build-arg "VERSION=${version}" --tag "$tag" . >&2
fi

if [ -n "$size_report" ]; then
    bytes="$(podman image inspect --format '{{.Size}}' "$tag")"
    compressed="$(podman save --format oci-archive "$tag" 2>/dev/null | gzip -6 | wc -c)"
    base_compressed="$(podman save --format oci-archive docker.io/library/debian:bookworm-slim 2>/dev/null | gzip -6 | wc -c)"
    mkdir -p "$(dirname "$size_report")"
    cat > "$size_report" <<JSON
{
  "image": "$tag",
  "uncompressed_bytes": $bytes,
  "compressed_bytes": $compressed,
  "base_compressed_bytes": $base_compressed,
  "target_compressed_bytes": 104857600,
  "binaries": "$(if [ "$from_source" = 1 ]; then echo from-source; else echo "${binaries}"; fi)"
}
JSON
    cat "$size_report" >&2
fi
echo "$tag"
