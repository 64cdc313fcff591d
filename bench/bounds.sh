#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: time and peak memory (GNU time's maximum RSS) of aem-pcr on hostile inputs
# (issue 19, items 9, 10 and 13). Goals: notice on a 200k-entry grub.cfg < 1 s and < 100 MB,
# every case <= 100 MB, the GRUB evaluator's 500,000-step bound reached in < 1 s, a 10 GB gzip
# bomb refused at 4 GiB of output (issue: 5.9 s to its end).
# The inputs are generated in a scratch directory and removed afterwards:
#   - grub.cfg: 200,000 entries, then the shipped example's AEM entries (Vectors/example);
#   - a 9-line grub.cfg whose functions call each other 8 times per level (8^8 calls);
#   - the example's initramfs replaced by a 10 GB gzip bomb (Tests/Scripts/gzip-bomb.py);
#   - aem-pcr-prediction.json: 4 MiB holding one array of 2 million numbers (check-boot);
#   - 60 MB of text that is no log (log show).
# usage: bench/bounds.sh [--update-readme] [BINARY]   (default: builds .build/release/aem-pcr)
#   --update-readme: writes the table into README.md between its bench/bounds.sh markers.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
update=0
if [ "${1:-}" = "--update-readme" ]; then update=1; shift; fi
bin=${1:-}
if [ -z "$bin" ]; then
  swift build -c release --static-swift-stdlib --product aem-pcr >/dev/null
  bin=$repo/.build/release/aem-pcr
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
[ -x "$bin" ] || { echo "bench/bounds.sh: $bin is not an executable" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench/bounds.sh: needs GNU time (/usr/bin/time, Debian package time)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work" "$repo/Vectors/example/grub.cfg" <<'PY'
import sys
work, example = sys.argv[1], sys.argv[2]
with open(work + "/big.cfg", "w") as f:
    for i in range(200000):
        f.write("menuentry 'Entry %d' {\n multiboot /tboot.gz\n module /xen-4.17.5.gz\n}\n" % i)
    f.write(open(example).read())
w = "function g { true; true; true; true; }\n"
for k in range(8):
    w += "function h%d { " % k + ("g; " if k == 0 else "h%d; " % (k - 1)) * 8 + "}\n"
w += "h7\nmenuentry 'E' {\n multiboot /t\n}\n"
open(work + "/exp.cfg", "w").write(w)
with open(work + "/pred.json", "w") as f:
    f.write('{"format": "aem-pcr-sealed-prediction/1", "events": [' + ",".join(["1"] * ((2 << 20) - 64)) + "]}")
with open(work + "/notes.txt", "w") as f:
    line = "hello, this is not a DRTM event log\n"
    f.write(line * (60000000 // len(line)))
PY
cp -r Vectors/example/boot "$work/boot"
cp -r Vectors/example/boot "$work/bomb-boot"
python3 Tests/Scripts/gzip-bomb.py 10000000000 "$work/bomb-boot/initramfs-6.6.63-1.qubes.fc37.x86_64.img"
mkdir -p "$work/tpm/aem"
cp "$work/pred.json" "$work/tpm/aem/aem-pcr-prediction.json"

rows=()
measure() {  # label, then the arguments of aem-pcr
  local label=$1; shift
  /usr/bin/time -f '%e %U %S %M %x' -o "$work/time.out" "$bin" "$@" >"$work/out" 2>&1 || true
  read -r secs user sys kib status < <(tail -1 "$work/time.out")
  cpu=$(python3 -c "print('%.2f' % ($user + $sys))")
  rows+=("$(printf '%-42s %6.2f s (CPU %5.2f s) %4d MB  exit %s' "$label" "$secs" "$cpu" $(( (kib + 1023) / 1024 )) "$status")")
  printf '%s\n' "${rows[-1]}"
  printf '    %s\n' "$(head -c 300 "$work/out" | head -1)"
}
cd "$work"
echo "aem-pcr on hostile inputs ($(basename "$bin") $("$bin" --version 2>/dev/null || true); goals: < 1 s where timed, <= 100 MB;"
echo "wall time, CPU time (user + system) and peak memory (maximum RSS) per case; load average $(cut -d' ' -f1 /proc/loadavg))"
measure "notice, grub.cfg of 200,000 entries" notice --grub-cfg big.cfg --boot-dir boot \
  --state-dir state --mem no-mem --aem-dir no-aem --tpm 1.2
measure "predict --entry 199999, same grub.cfg" predict --grub-cfg big.cfg --entry 199999 --boot-dir boot --tpm 1.2
measure "GRUB evaluator to its 500,000-step bound" predict --grub-cfg exp.cfg --entry E --tpm 1.2
measure "notice, initramfs a 10 GB gzip bomb" notice --grub-cfg "$repo/Vectors/example/grub.cfg" \
  --boot-dir bomb-boot --state-dir state2 --mem no-mem --aem-dir no-aem --tpm 1.2
measure "check-boot, 4 MiB prediction of 2M numbers" check-boot --label aem --tpm-dir tpm --pcrs /dev/null
measure "log show, 60 MB of text that is no log" log show notes.txt
cd "$repo"

if [ "$update" = 1 ]; then
  python3 - README.md "$(date -u +%Y-%m-%d)" "$(nproc)" "${rows[@]}" <<'PY'
import sys
path, day, cores, rows = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
text = open(path).read()
begin, end = "<!-- bench/bounds.sh begin -->\n", "<!-- bench/bounds.sh end -->\n"
a, b = text.index(begin) + len(begin), text.index(end)
block = "```\n" + "\n".join(rows) + "\n```\n(`bench/bounds.sh`, %s, release build, %s cores shared with other builds: wall time,\nCPU time, peak memory)\n" % (day, cores)
open(path, "w").write(text[:a] + block + text[b:])
PY
  echo "README.md updated"
fi
