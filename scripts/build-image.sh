#!/usr/bin/env bash
# Builds berth's container image from a berth binary built on this machine,
# with no base image (a FROM scratch image: see deploy/image/Dockerfile.runtime),
# for machines that cannot pull the Dockerfile's Rust build image. Needs a
# running docker daemon (DOCKER_HOST is honoured).
#
#   scripts/build-image.sh                          # cargo build --release, tag berth:dev
#   scripts/build-image.sh target/release/berth berth:1.0
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin=${1:-}
tag=${2:-berth:dev}
if [ -z "$bin" ]; then
  (cd "$here" && cargo build --release --locked)
  bin="$here/target/release/berth"
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
bash "$here/scripts/image-rootfs.sh" "$bin" "$ctx/rootfs"
cp "$here/deploy/image/Dockerfile.runtime" "$ctx/Dockerfile"
DOCKER_BUILDKIT=0 docker build --quiet -t "$tag" "$ctx" >/dev/null
size=$(docker image inspect --format '{{.Size}}' "$tag")
echo "built $tag: $((size / 1024 / 1024)) MiB ($size bytes) uncompressed"
