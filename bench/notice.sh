#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: run time of `aem-pcr notice`, the command the dnf/apt hooks run after an update,
# on the shipped example (Vectors/example: the Qubes AEM grub.cfg and its boot files). Goal:
# under 1 second, so that the hook never holds up a package transaction.
# Two runs are timed: nothing changed, and Xen plus the initramfs replaced (the hook's output).
# --dom0-sized: the kernel and initramfs replaced by files of a real dom0's size (a 12 MiB
# kernel, a gzip initramfs of 64 MiB unpacked), generated once under .build/bench-notice.
# --menu-200k: notice's choice of boot in a grub.cfg of 200,000 entries, nothing changed, two
# menus: Qubes (200,000 entries, then the example's AEM entries: the first AEM title is read
# from the menu's one evaluation) and Debian (200,000 entries that boot Xen, not tboot, then
# one that boots tboot: no title says AEM, so every entry is evaluated and its kernel checked).
# usage: bench/notice.sh [--dom0-sized | --menu-200k] [BINARY]   (default: builds .build/release/aem-pcr)
#        bench/notice.sh --update-readme [BINARY]: all three (the example, --dom0-sized,
#        --menu-200k), and the timings written into README.md between its bench/notice.sh markers.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
if [ "${1:-}" = "--update-readme" ]; then
  shift
  example=$(bash "$0" "$@" | grep -E '^(nothing changed|Xen and initramfs replaced)')
  sized=$(bash "$0" --dom0-sized "$@" | grep -E '^(nothing changed|Xen and initramfs replaced)')
  menus=$(bash "$0" --menu-200k "$@" | grep -E '^(Qubes|Debian) menu')
  python3 - README.md "$(date -u +%Y-%m-%d)" "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)" "$example" "$sized" "$menus" <<'PY'
import sys
path, day, cores, load, example, sized, menus = sys.argv[1:]
text = open(path).read()
begin, end = "<!-- bench/notice.sh begin -->\n", "<!-- bench/notice.sh end -->"
a, b = text.index(begin) + len(begin), text.index(end)
block = ("```\nthe shipped example\n" + "\n".join("  " + l for l in example.split("\n")) +
         "\n--dom0-sized\n" + "\n".join("  " + l for l in sized.split("\n")) +
         "\n--menu-200k (grub.cfg of 200,000 entries, nothing changed)\n" + "\n".join("  " + l for l in menus.split("\n")) +
         "\n```\n(`bench/notice.sh --update-readme`, %s, release build, %s cores, load average %s)\n" % (day, cores, load))
open(path, "w").write(text[:a] + block + text[b:])
PY
  echo "README.md updated"
  exit 0
fi
sized=0 menu=0
if [ "${1:-}" = "--dom0-sized" ]; then sized=1; shift; fi
if [ "${1:-}" = "--menu-200k" ]; then menu=1; shift; fi
bin=${1:-}
if [ -z "$bin" ]; then
  swift build -c release --static-swift-stdlib --product aem-pcr >/dev/null
  bin=$repo/.build/release/aem-pcr
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r Vectors/example/boot "$work/boot"
if [ "$sized" = 1 ]; then
  gen=$repo/.build/bench-notice
  mkdir -p "$gen"
  [ -f "$gen/vmlinuz" ] || head -c $((12 << 20)) /dev/urandom > "$gen/vmlinuz"
  if [ ! -f "$gen/initramfs.img" ]; then
    # Half random, half repetitive text: compresses about as a cpio of binaries and scripts does.
    { head -c $((32 << 20)) /dev/urandom; yes 'usr/lib/modules/6.6.63/kernel/drivers/x.ko' | head -c $((32 << 20)); } \
      | gzip -6 > "$gen/initramfs.img"
  fi
  cp "$gen/vmlinuz" "$work/boot/vmlinuz-6.6.63-1.qubes.fc37.x86_64"
  cp "$gen/initramfs.img" "$work/boot/initramfs-6.6.63-1.qubes.fc37.x86_64.img"
fi
args=(notice --grub-cfg "$repo/Vectors/example/grub.cfg" --boot-dir "$work/boot"
      --state-dir "$work/state" --mem "$work/no-mem" --tpm 1.2)
if [ "$menu" = 1 ]; then
  python3 - "$work" "$repo/Vectors/example/grub.cfg" <<'PY'
import sys
work, example = sys.argv[1:]
with open(work + "/qubes.cfg", "w") as f:
    for i in range(200000):
        f.write("menuentry 'Entry %d' {\n multiboot /tboot.gz\n module /xen-4.17.5.gz\n}\n" % i)
    f.write(open(example).read())
k = "6.6.63-1.qubes.fc37.x86_64"
with open(work + "/debian.cfg", "w") as f:
    f.write("set k=%s\n" % k)
    for i in range(200000):
        f.write("menuentry 'Xen %d' {\n multiboot2 /xen-4.17.5.gz\n module2 /vmlinuz-$k\n}\n" % i)
    f.write("menuentry 'Debian, with tboot' {\n multiboot2 /tboot.gz logging=serial\n module2 /xen-4.17.5.gz\n"
            " module2 /vmlinuz-%s\n module2 /initramfs-%s.img\n}\n" % (k, k))
PY
  echo "aem-pcr notice's choice of boot in a grub.cfg of 200,000 entries, nothing changed, goal < 1 s"
  for m in qubes debian; do
    margs=(notice --grub-cfg "$work/$m.cfg" --boot-dir "$work/boot" --state-dir "$work/state-$m"
           --mem "$work/no-mem" --aem-dir "$work/no-aem" --tpm 1.2)
    "$bin" "${margs[@]}" >/dev/null   # saves the measurements
    out=$("$bin" "${margs[@]}")
    case "$out" in *"no DRTM PCR changes"*) ;; *) echo "bench/notice.sh: $m menu: $out" >&2; exit 1 ;; esac
    start=$(date +%s.%N)
    for _ in $(seq 5); do "$bin" "${margs[@]}" >/dev/null; done
    end=$(date +%s.%N)
    cpu=$( { /usr/bin/time -f '%U %S' "$bin" "${margs[@]}" >/dev/null; } 2>&1 | awk '{ printf "%.2f", $1 + $2 }')
    label="$(tr a-z A-Z <<<"${m:0:1}")${m:1} menu"
    python3 -c "print('%-28s mean %.3f s  (5 runs; CPU %s s)' % ('$label', ($end - $start) / 5, '$cpu'))"
  done
  exit 0
fi
"$bin" "${args[@]}" >/dev/null   # the package's installation: saves the measurements
bytes=$(du -cb "$work"/boot/* | tail -1 | cut -f1)
echo "aem-pcr notice on the shipped example ($((bytes / 1024)) KiB of boot files), goal < 1 s"
[ "$sized" = 1 ] && echo "  with a 12 MiB kernel and a 64 MiB (unpacked) gzip initramfs"

time_runs() {  # label
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 2 --runs 20 --style basic --export-json "$work/h.json" \
      "$bin ${args[*]}" >/dev/null
    python3 - "$1" "$work/h.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))["results"][0]
print("%-28s mean %.3f s  max %.3f s  (%d runs)" % (sys.argv[1], r["mean"], r["max"], len(r["times"])))
PY
  else
    local start end
    start=$(date +%s.%N)
    for _ in $(seq 20); do "$bin" "${args[@]}" >/dev/null; done
    end=$(date +%s.%N)
    python3 -c "print('%-28s mean %.3f s  (20 runs)' % ('$1', ($end - $start) / 20))"
  fi
}
time_runs "nothing changed"
cp Vectors/example/boot/xen-4.17.4.gz "$work/boot/xen-4.17.5.gz"
cp Vectors/example/boot/initramfs-6.6.48-1.qubes.fc37.x86_64.img \
   "$work/boot/initramfs-6.6.63-1.qubes.fc37.x86_64.img"
time_runs "Xen and initramfs replaced"
echo "--- what the hook prints after that update:"
"$bin" "${args[@]}"
