#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prepares the benchmark's realistic boot set from real Debian 12 files and prints one path per
# line: tboot, Xen, kernel, initramfs.
# - tboot: /boot/tboot.gz (Debian's tboot package, installed).
# - Xen: xen-hypervisor-4.17-amd64's boot/xen-4.17-amd64.gz (Tests/Scripts/fetch-debian-xen.sh).
# - kernel: the vmlinuz of the kernel package linux-image-amd64 points to.
# - initramfs: a newc cpio of that kernel package's real files (sorted, up to $AEMPCR_BENCH_INITRD_MB,
#   default 200 MiB), `gzip -6 -n`, as mkinitramfs and dracut compress by default.
# Packages come from `apt-get download` and are unpacked with `dpkg -x` (never installed) into the
# cache $AEMPCR_BENCH_DIR (default <repo>/.build/bench), which stays out of git.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${AEMPCR_BENCH_DIR:-$repo/.build/bench}
mb=${AEMPCR_BENCH_INITRD_MB:-200}
mkdir -p "$cache"

tboot=/boot/tboot.gz
[ -f "$tboot" ] || { echo "bench: needs Debian's tboot package (/boot/tboot.gz)" >&2; exit 2; }
xen=$(AEMPCR_TEST_CACHE=$cache bash "$repo/Tests/Scripts/fetch-debian-xen.sh") ||
  { echo "bench: cannot fetch Debian's xen-hypervisor-4.17-amd64" >&2; exit 2; }

kdir=$cache/linux-image
if ! ls "$kdir"/boot/vmlinuz-* >/dev/null 2>&1; then
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ { print $2; exit }')
  [ -n "$pkg" ] || { echo "bench: apt-cache knows no linux-image-amd64" >&2; exit 2; }
  (cd "$cache" && rm -f linux-image-*.deb && apt-get download "$pkg" >/dev/null) ||
    { echo "bench: cannot apt-get download $pkg" >&2; exit 2; }
  rm -rf "$kdir" && dpkg -x "$cache"/"$pkg"_*.deb "$kdir" && rm -f "$cache"/"$pkg"_*.deb
fi
kernel=$(ls "$kdir"/boot/vmlinuz-* | head -n 1)

initrd=$cache/initramfs-${mb}M.img
if [ ! -f "$initrd" ]; then
  python3 - "$kdir" "$mb" <<'PY' | gzip -6 -n > "$initrd.tmp"
import os, sys
root, limit = sys.argv[1], int(sys.argv[2]) << 20
out = sys.stdout.buffer
def entry(name, mode, data, ino):
    # newc header: magic, then 13 eight-digit hex fields; name and data padded to 4 bytes.
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + name + b"\0"
    out.write(head + b"\0" * (-len(head) % 4) + data + b"\0" * (-len(data) % 4))
total, ino = 0, 1
paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
for p in paths:
    if total >= limit or os.path.islink(p):
        continue
    data = open(p, "rb").read()[: limit - total]
    entry(os.path.relpath(p, root).encode(), 0o100644, data, ino)
    total, ino = total + len(data), ino + 1
entry(b"TRAILER!!!", 0, b"", 0)
PY
  mv "$initrd.tmp" "$initrd"
fi
printf '%s\n' "$tboot" "$xen" "$kernel" "$initrd"
