#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prints the path of Debian 12's real Xen image (boot/xen-4.17-amd64.gz), downloading the
# package once with `apt-get download` and unpacking it with `dpkg -x` (not installed).
# Cache: $AEMPCR_TEST_CACHE or <repo>/.build/test-downloads. Exit 77 when it cannot be had.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${AEMPCR_TEST_CACHE:-$repo/.build/test-downloads}
pkg=xen-hypervisor-4.17-amd64
out=$cache/$pkg
img=$(ls "$out"/boot/xen-4.17-amd64.gz 2>/dev/null || true)
if [ -z "$img" ]; then
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || exit 77
  mkdir -p "$cache"
  (cd "$cache" && rm -f "$pkg"_*.deb && apt-get download "$pkg" >/dev/null 2>&1) || exit 77
  rm -rf "$out" && dpkg -x "$cache"/"$pkg"_*.deb "$out"
  img=$out/boot/xen-4.17-amd64.gz
fi
[ -f "$img" ] || exit 77
echo "$img"
