#!/usr/bin/env bash
# Build a local stand-in for python:3.11-slim where Docker Hub is out of reach: a minimal
# Debian bookworm root filesystem with Python 3.11, venv and pip, imported as an image.
# Usage: deploy/docker/make_base_image.sh [IMAGE_TAG]   (default local/python:3.11)
# Needs root, debootstrap and a running Docker daemon. Does nothing if the image exists.
set -euo pipefail
tag="${1:-local/python:3.11}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag already present"
  exit 0
fi
rootfs="$(mktemp -d /tmp/churn-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  bookworm "$rootfs" "$mirror" >/dev/null
# Remove apt lists and caches: they are not needed at run time.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' - "$tag" >/dev/null
echo "built base image $tag"
