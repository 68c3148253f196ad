#!/usr/bin/env bash
# Makes the runtime image's base, docker.io/library/debian:bookworm-slim,
# in the local podman store when it is not there already (this machine
# reaches Debian's package mirror but no image registry): a minbase
# debootstrap, trimmed the way Debian's -slim images are, imported under
# the official name. Idempotent; prints the image name.
set -euo pipefail

BASE="${ALLUXIO_BASE_IMAGE:-docker.io/library/debian:bookworm-slim}"
SUITE="${ALLUXIO_BASE_SUITE:-bookworm}"
MIRROR="${ALLUXIO_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if podman image exists "$BASE"; then
    echo "$BASE"
    exit 0
fi

root="$(mktemp -d /var/tmp/alluxio-base.XXXXXX)"
trap 'rm -rf "$root" "$root.log"' EXIT
debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || {
    cat "$root.log" >&2
    exit 1
}
# What debian:*-slim leaves out: documentation, manuals, translations,
# package lists and caches.
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
    "$root"/var/cache/debconf/*-old "$root"/var/log/*.log "$root"/var/log/apt/*
tar --numeric-owner -C "$root" -c . | podman import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL alluxio.rs/base-made-by=scripts/base-image.sh" \
    - "$BASE" >&2
echo "$BASE"
