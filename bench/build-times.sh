#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build times from a clean scratch directory, as README's "Try it" states them: the tracked
# files copied to a scratch directory (no .build), then `swift build -c release` and
# `swift build` (debug) there, each from nothing (dependency resolution included), timed with
# GNU time (wall time, CPU time = user + system). The load average before each build is printed:
# other work on the machine stretches the wall time, hardly the CPU time.
# usage: bench/build-times.sh [--update-readme]
#   --update-readme: writes the sentence into README.md between its bench/build-times.sh markers.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
update=0
[ "${1:-}" = "--update-readme" ] && update=1
[ -x /usr/bin/time ] || { echo "bench/build-times.sh: needs GNU time (/usr/bin/time, Debian package time)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$repo" && git ls-files -z | tar --null -T - -cf -) | (cd "$work" && tar -xf -)
measure() {  # label, then the swift build arguments; prints "WALL CPU LOAD"
  local label=$1; shift
  rm -rf "$work/.build"
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  (cd "$work" && /usr/bin/time -f '%e %U %S' -o "$work/time.out" swift build "$@" >"$work/build.log" 2>&1) \
    || { echo "bench/build-times.sh: swift build $* failed:" >&2; tail -20 "$work/build.log" >&2; exit 1; }
  read -r wall user sys < "$work/time.out"
  local cpu; cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f", u + s }')
  printf '%-22s %4.0f s wall, %4s s CPU, load average %s before\n' "$label" "$wall" "$cpu" "$load" >&2
  printf '%.0f %s %s\n' "$wall" "$cpu" "$load"
}
read -r rw rc rl < <(measure "swift build -c release" -c release)
read -r dw dc dl < <(measure "swift build (debug)")
if [ "$update" = 1 ]; then
  swift_version=$(swift --version 2>/dev/null | sed -n 's/.*Swift version \([0-9.]*\).*/\1/p' | head -1)
  python3 - "$repo/README.md" "$(date -u +%Y-%m-%d)" "$(nproc)" "$swift_version" "$rw" "$rc" "$rl" "$dw" "$dc" "$dl" <<'PY'
import sys
path, day, cores, swift, rw, rc, rl, dw, dc, dl = sys.argv[1:]
text = open(path).read()
begin, end = "<!-- bench/build-times.sh begin -->\n", "<!-- bench/build-times.sh end -->"
a, b = text.index(begin) + len(begin), text.index(end)
block = ("`swift build -c release` %s s (%s s of CPU), `swift build` (debug) %s s (%s s of CPU): from a clean\n"
         "scratch directory, dependency resolution included, on %s cores (load average %s and %s before;\n"
         "`bench/build-times.sh --update-readme`, %s, Swift %s)\n") % (rw, rc, dw, dc, cores, rl, dl, day, swift)
open(path, "w").write(text[:a] + block + text[b:])
PY
  echo "README.md updated" >&2
fi
