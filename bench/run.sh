#!/usr/bin/env bash
# Benchmark: wall time and peak RSS of `aem-pcr predict` against the single-bank baseline a user
# would script (sha256sum of exactly the bytes tboot hashes), on a realistic set:
# Debian's real xen-4.17-amd64.gz, a 12 MiB kernel-sized file, a 256 MiB gzip-compressed
# initramfs-sized file of mixed compressible/random content. Ratios are from this one run.
# usage: bench/run.sh [--quick]   (--quick: 64 MiB initramfs)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${AEMPCR_BENCH_DIR:-$repo/.build/bench}
mb=256
[ "${1:-}" = "--quick" ] && mb=64
mkdir -p "$work"
cd "$repo"

swift build -c release >/dev/null
bin=$repo/.build/release/aem-pcr
tboot=/boot/tboot.gz
[ -f "$tboot" ] || { echo "needs Debian's tboot package (/boot/tboot.gz)"; exit 2; }
xen=$(bash Tests/Scripts/fetch-debian-xen.sh) || { echo "cannot fetch Debian's Xen"; exit 2; }

kernel=$work/vmlinuz-12M
[ -f "$kernel" ] || head -c $((12 << 20)) /dev/urandom > "$kernel"
initrd=$work/initramfs-${mb}M.img
if [ ! -f "$initrd" ]; then
  python3 - "$initrd" "$mb" <<'PY'
import gzip, os, random, sys
path, mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9))) for _ in range(4000)]
text = []  # a few distinct 1 MiB text/table blocks, reused in random order
for _ in range(6):
    chunk = b" ".join(rnd.choice(words) for _ in range((1 << 20) // 5))
    text.append(chunk[: 1 << 20].ljust(1 << 20, b"\0"))
with gzip.GzipFile(path, "wb", compresslevel=6, mtime=0) as f:
    for i in range(mb):
        if rnd.random() < 0.4:  # already-compressed payload (firmware, modules.xz)
            f.write(os.urandom(1 << 20))
        else:                   # text, tables, padding; a per-MiB marker keeps blocks distinct
            f.write(b"%08d" % i + text[rnd.randrange(len(text))][8:])
PY
fi

timed() {  # prints "wall_seconds peak_rss_kib" of a command
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >/dev/null
  cat "$work/time.txt"
}
baseline() {
  local t0 t1
  t0=$(date +%s.%N)
  zcat "$xen" | sha256sum >/dev/null
  sha256sum "$kernel" >/dev/null
  zcat "$initrd" | sha256sum >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
predict() {
  timed "$bin" predict --tboot "$tboot" --tboot-cmdline "placeholder logging=memory,serial" \
    --module "$xen placeholder console=none dom0_mem=min:1024M" \
    --module "$kernel placeholder root=/dev/mapper/qubes_dom0-root ro" \
    --module "$initrd" "$@"
}

# Warm the page cache so every contender reads from memory.
cat "$xen" "$kernel" "$initrd" "$tboot" >/dev/null
base=$(baseline)
read -r four rss4 < <(predict --tpm 2.0 --extpol embedded --bank sha1 --bank sha256 --bank sha384 --bank sha512)
read -r one rss1 < <(predict --tpm 2.0 --extpol sha256 --bank sha256)
read -r legacy rssl < <(predict --tpm 1.2)
printf 'initramfs: %d MiB gzip-compressed (%s bytes on disk); kernel 12 MiB; Xen %s\n' "$mb" "$(stat -c %s "$initrd")" "$(basename "$xen")"
printf '%-44s %8s %8s %10s\n' "run" "wall s" "ratio" "peak RSS"
printf '%-44s %8.3f %8s %10s\n' "baseline: zcat|sha256sum, sha256sum (1 bank)" "$base" "1.00" "-"
for row in "TPM 2.0 extpol=embedded (4 banks):$four:$rss4:1.0" "TPM 2.0 extpol=sha256 (1 bank):$one:$rss1:0.7" "TPM 1.2 legacy (sha1):$legacy:$rssl:-"; do
  IFS=: read -r name t rss goal <<<"$row"
  ratio=$(echo "$t / $base" | bc -l)
  printf '%-44s %8.3f %8.2f %7d MiB  (goal %s)\n' "$name" "$t" "$ratio" $((rss / 1024)) "$goal"
done
