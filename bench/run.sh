#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark of `aem-pcr predict` on a realistic boot set of real Debian 12 files (see
# bench/realistic-set.sh: tboot, Xen 4.17, the linux-image-amd64 kernel, a 200 MiB gzip -6
# initramfs of that kernel package's files), against what a user would script, measured in the
# same run: `zcat F | sha256sum` per gzip file, `sha256sum F` otherwise.
# Per run: wall time, ratio to the baseline, peak RSS and CPU time (user + system: what the
# work costs, whatever else runs on the machine) of
#   - one bank: TPM 1.2 (legacy, SHA-1), goal <= 0.35x;
#   - four banks: TPM 2.0 extpol=embedded (SHA-1/256/384/512), goal <= 0.6x;
#   (peak RSS goal <= 64 MiB), each with ISA-L and with zlib (AEMPCR_INFLATER=zlib);
# and the machine's limit, each on one core: inflate alone (ISA-L, zlib) of the set's gzip
# files, and each hash alone over the images (bench/limit.c, the same libraries aem-pcr uses).
# "bound" is the best wall time those limits allow on this machine when idle, from their CPU
# times: one bank max(inflate, SHA-1); four banks max(inflate, slowest hash,
# (inflate + all hashes) / cores).
# Then min-max over the runs. The load average is printed: other work on the machine slows
# every contender, the baseline too.
# usage: bench/run.sh [--runs N] [--update-readme] [BINARY]
#   --runs N  (default 5)
#   --update-readme  writes the table, the goals and the comparison with the limits into
#             README.md between its bench/run.sh markers (README's "Performance").
#   BINARY    the aem-pcr to time (default: swift build -c release, .build/release/aem-pcr)
#   needs: swift, cc, libisal-dev, zlib1g-dev, libssl-dev, python3, bc, time (/usr/bin/time),
#   apt-get/dpkg for the Debian files.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${AEMPCR_BENCH_DIR:-$repo/.build/bench}
runs=5
update=0
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --update-readme) update=1; shift ;;
    -*) echo "bench/run.sh: unknown option '$1' (--runs N, --update-readme, BINARY)" >&2; exit 2 ;;
    *) bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); shift ;;
  esac
done
export AEMPCR_BENCH_DIR=$work
mkdir -p "$work"
cd "$repo"
[ -x /usr/bin/time ] || { echo "bench: needs /usr/bin/time (Debian package time)" >&2; exit 2; }

if [ -z "$bin" ]; then
  swift build -c release >/dev/null
  bin=$repo/.build/release/aem-pcr
fi
[ -x "$bin" ] || { echo "bench/run.sh: $bin is not an executable" >&2; exit 2; }
cc -O2 -o "$work/limit" bench/limit.c -lisal -lz -lcrypto
mapfile -t set < <(bash bench/realistic-set.sh)
tboot=${set[0]} xen=${set[1]} kernel=${set[2]} initrd=${set[3]}
gzips=("$tboot" "$xen" "$initrd")
# The images in memory, unzipped once, for the hash-alone limits.
mkdir -p "$work/images"
images=("$kernel")
for f in "$tboot" "$xen" "$initrd"; do
  img=$work/images/$(basename "$f").image
  [ -f "$img" ] || zcat "$f" > "$img"
  images+=("$img")
done

timed() {  # prints "wall_s peak_rss_kib cpu_s" of a command
  /usr/bin/time -f "%e %M %U %S" -o "$work/time.txt" "$@" >/dev/null
  awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }' "$work/time.txt"
}
baseline() {
  timed bash -c 'for f in "$1" "$2" "$3"; do zcat "$f" | sha256sum; done; sha256sum "$4"' \
    baseline "$tboot" "$xen" "$initrd" "$kernel"
}
predict() {
  timed "$bin" predict --tboot "$tboot" --tboot-cmdline "placeholder logging=memory,serial" \
    --module "$xen placeholder console=none dom0_mem=min:1024M" \
    --module "$kernel placeholder root=/dev/mapper/qubes_dom0-root ro" \
    --module "$initrd" "$@"
}
one=(--tpm 1.2)
four=(--tpm 2.0 --extpol embedded --bank sha1 --bank sha256 --bank sha384 --bank sha512)
cores=$(nproc)

printf 'set: %s\n' "$(for f in "${set[@]}"; do printf '%s (%s B) ' "$(basename "$f")" "$(stat -c %s "$f")"; done)"
load_before=$(cut -d' ' -f1 /proc/loadavg)
printf 'images: %s MiB in all; %d cores; %d runs; load average before: %s\n' \
  "$(du -cm "${images[@]}" | awk 'END { print $1 }')" "$cores" "$runs" "$(cut -d' ' -f1-3 /proc/loadavg)"
results=$work/results.txt
: > "$results"
for r in $(seq 1 "$runs"); do
  cat "${set[@]}" "${images[@]}" >/dev/null  # page cache warm for every contender
  read -r base mb cb < <(baseline)
  read -r t1 m1 c1 < <(predict "${one[@]}")
  read -r t4 m4 c4 < <(predict "${four[@]}")
  read -r z1 zm1 zc1 < <(AEMPCR_INFLATER=zlib predict "${one[@]}")
  read -r z4 zm4 zc4 < <(AEMPCR_INFLATER=zlib predict "${four[@]}")
  # Limits: wall and CPU seconds; the bounds use the CPU seconds (an idle core's time).
  read -r li lic < <("$work/limit" isal "${gzips[@]}")
  read -r lz lzc < <("$work/limit" zlib "${gzips[@]}")
  declare -A lh=() lc=()
  for a in sha1 sha256 sha384 sha512; do read -r "lh[$a]" "lc[$a]" < <("$work/limit" "$a" "${images[@]}"); done
  b1=$(echo "if ($lic > ${lc[sha1]}) $lic else ${lc[sha1]}" | bc -l)
  sum=$(echo "($lic + ${lc[sha1]} + ${lc[sha256]} + ${lc[sha384]} + ${lc[sha512]}) / $cores" | bc -l)
  b4=$(echo "m = $lic; if (${lc[sha512]} > m) m = ${lc[sha512]}; if (${lc[sha384]} > m) m = ${lc[sha384]}; if ($sum > m) m = $sum; m" | bc -l)
  row() { printf '%-6s %-30s %6.3f %6.2f %9s %6s\n' "$r" "$1" "$2" "$(echo "$2 / $base" | bc -l)" "$3" "$4"; }
  {
    row "baseline (zcat|sha256sum)" "$base" "-" "$cb"
    row "one bank, ISA-L" "$t1" "$((m1 / 1024)) MiB" "$c1"
    row "one bank, zlib" "$z1" "$((zm1 / 1024)) MiB" "$zc1"
    row "one bank, bound" "$b1" "-" "-"
    row "four banks, ISA-L" "$t4" "$((m4 / 1024)) MiB" "$c4"
    row "four banks, zlib" "$z4" "$((zm4 / 1024)) MiB" "$zc4"
    row "four banks, bound" "$b4" "-" "-"
    for l in "inflate ISA-L:$li:$lic" "inflate zlib:$lz:$lzc" "sha1:${lh[sha1]}:${lc[sha1]}" \
             "sha256:${lh[sha256]}:${lc[sha256]}" "sha384:${lh[sha384]}:${lc[sha384]}" \
             "sha512:${lh[sha512]}:${lc[sha512]}"; do
      IFS=: read -r what wall cpu <<<"$l"
      row "limit: $what alone" "$wall" "-" "$(printf %.2f "$cpu")"
    done
  } >> "$results"
  printf 'run %d: baseline %.2f s; one bank %.2fx, four banks %.2fx (ISA-L); load %s\n' "$r" "$base" \
    "$(echo "$t1 / $base" | bc -l)" "$(echo "$t4 / $base" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
done
echo
printf 'load average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-30s %13s %11s %9s %7s\n' "over $runs runs (min-max)" "wall s" "ratio" "peak RSS" "CPU s"
awk '{
  name = substr($0, 8, 30); sub(/ +$/, "", name)
  t = substr($0, 39, 6) + 0; q = substr($0, 46, 6) + 0; rss = substr($0, 53, 9); cpu = substr($0, 63) + 0
  if (!(name in n)) { order[++k] = name; tmin[name] = t; tmax[name] = t; qmin[name] = q; qmax[name] = q }
  n[name]++
  if (t < tmin[name]) tmin[name] = t; if (t > tmax[name]) tmax[name] = t
  if (q < qmin[name]) qmin[name] = q; if (q > qmax[name]) qmax[name] = q
  if (rss ~ /MiB/) { v = rss + 0; if (!(name in rmin) || v < rmin[name]) rmin[name] = v; if (v > rmax[name]) rmax[name] = v }
  if (cpu > 0) { if (!(name in cmin) || cpu < cmin[name]) cmin[name] = cpu; if (cpu > cmax[name]) cmax[name] = cpu }
} END {
  for (i = 1; i <= k; i++) {
    m = order[i]
    r = (m in rmin) ? sprintf("%d-%d MiB", rmin[m], rmax[m]) : "-"
    c = (m in cmin) ? sprintf("%.2f-%.2f", cmin[m], cmax[m]) : "-"
    printf "%-30s %6.3f-%6.3f %5.2f-%5.2f %9s %7s\n", m, tmin[m], tmax[m], qmin[m], qmax[m], r, c
  }
}' "$results"
awk '{ name = substr($0, 8, 30); sub(/ +$/, "", name); q = substr($0, 46, 6) + 0; rss = substr($0, 53, 9) + 0
       if (name == "one bank, ISA-L" && q > one) one = q
       if (name == "four banks, ISA-L" && q > four) four = q
       if (name ~ /ISA-L$/ && rss > mem) mem = rss }
     END { ok = "met"; if (one > 0.35 || four > 0.60 || mem > 64) ok = "NOT met"
           printf "goals (one bank <= 0.35x, four banks <= 0.60x, peak RSS <= 64 MiB): worst run %.2fx, %.2fx, %d MiB: %s\n", one, four, mem, ok }' "$results"

if [ "$update" = 1 ]; then
  # README's table: per row the range over the runs, then the goals and how the CPU times
  # compare with the limits, all from this run's results.
  python3 - "$repo/README.md" "$results" "$(date -u +'%Y-%m-%d %H:%M')" "$cores" "$runs" "$load_before" \
    "$(cut -d' ' -f1 /proc/loadavg)" "$(stat -c %s "$initrd")" "$(stat -c %s "${images[3]}")" \
    "$("$bin" --version)" <<'PY'
import sys
path, results, when, cores, runs, load0, load1, initrd_gz, initrd_raw, version = sys.argv[1:]
rows, order = {}, []
for line in open(results):
    name = line[7:37].rstrip()
    t, q, rss, cpu = line[38:44].strip(), line[45:51].strip(), line[52:61].strip(), line[62:].strip()
    if name not in rows:
        rows[name] = {"t": [], "q": [], "rss": [], "cpu": []}
        order.append(name)
    r = rows[name]
    r["t"].append(float(t)); r["q"].append(float(q))
    if rss.endswith("MiB"): r["rss"].append(int(rss.split()[0]))
    if cpu != "-": r["cpu"].append(float(cpu))
def span(v, fmt="%.2f", unit=""):
    if not v: return ""
    a, b = fmt % min(v), fmt % max(v)
    return (a if a == b else a + "–" + b) + unit
labels = {
    "baseline (zcat|sha256sum)": ("baseline: `zcat F \\| sha256sum`, `sha256sum F`", ""),
    "one bank, ISA-L": ("**one bank** (TPM 1.2, SHA-1), ISA-L", "≤ 0.35"),
    "one bank, zlib": ("one bank, zlib (`AEMPCR_INFLATER=zlib`)", ""),
    "one bank, bound": ("one bank, bound: max(inflate, SHA-1)", ""),
    "four banks, ISA-L": ("**four banks** (TPM 2.0 `extpol=embedded`), ISA-L", "≤ 0.6"),
    "four banks, zlib": ("four banks, zlib", ""),
    "four banks, bound": ("four banks, bound: max(inflate, slowest hash, (inflate + 4 hashes) / %s)" % cores, ""),
}
out = ["On %s cores, %s runs, %s UTC (load average %s before, %s after); the initramfs is %.0f MiB, %.0f MiB gzipped:" %
       (cores, runs, when, load0, load1, int(initrd_raw) / 1048576, int(initrd_gz) / 1048576), "",
       "| run | wall time | ratio to baseline | goal | peak RSS | CPU time |", "|---|---|---|---|---|---|"]
for name in order:
    r = rows[name]
    label, goal = labels.get(name, (name, ""))
    ratio = "1.00" if name.startswith("baseline") else ("" if name.startswith("limit") else span(r["q"]))
    out.append("| %s | %s | %s | %s | %s | %s |" % (label, span(r["t"], unit=" s"), ratio, goal,
               span(r["rss"], "%d", " MiB"), span(r["cpu"], unit=" s")))
worst1, worst4 = max(rows["one bank, ISA-L"]["q"]), max(rows["four banks, ISA-L"]["q"])
mem = max(rows["one bank, ISA-L"]["rss"] + rows["four banks, ISA-L"]["rss"])
met = worst1 <= 0.35 and worst4 <= 0.6 and mem <= 64
out += ["", "Goals (one bank ≤ 0.35×, four banks ≤ 0.6×, peak RSS ≤ 64 MiB): %s (worst run %.2f×, %.2f×, %d MiB)." %
        ("met in every run" if met else "NOT met", worst1, worst4, mem)]
lim = lambda n: rows["limit: %s alone" % n]["cpu"]
one_sum = [a + b for a, b in zip(lim("inflate ISA-L"), lim("sha1"))]
four_sum = [sum(x) for x in zip(lim("inflate ISA-L"), lim("sha1"), lim("sha256"), lim("sha384"), lim("sha512"))]
out += ["CPU time against the limits (each alone on one core): one bank %s against inflate + SHA-1 %s;" %
        (span(rows["one bank, ISA-L"]["cpu"], unit=" s"), span(one_sum, unit=" s")),
        "four banks %s against inflate + the four hashes %s, whose share per core (%s cores), %s, bounds the" %
        (span(rows["four banks, ISA-L"]["cpu"], unit=" s"), span(four_sum, unit=" s"), cores,
         span([s / int(cores) for s in four_sum], unit=" s")),
        "wall time on an idle machine (best four-bank run: %.2f s)." % min(rows["four banks, ISA-L"]["t"]),
        "(`bench/run.sh --update-readme`, %s, aem-pcr %s)" % (when[:10], version)]
text = open(path).read()
begin, end = "<!-- bench/run.sh begin -->\n", "<!-- bench/run.sh end -->"
a, b = text.index(begin) + len(begin), text.index(end)
open(path, "w").write(text[:a] + "\n".join(out) + "\n" + text[b:])
PY
  echo "README.md updated"
fi
