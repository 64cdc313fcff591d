#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# grub-emu-args.sh GRUB_CFG ENTRY [PLATFORM]
#
# Runs REAL GRUB script (Debian package grub-emu, user-space GRUB) on a copy of
# GRUB_CFG, boots ENTRY (a title path as GRUB_DEFAULT names it, e.g.
# "Submenu title>Entry title"; ids and numbers also work) and prints, for every
# loader command the entry runs, one line
#     <command>\t<arg1>\t<arg2>...
# with the arguments exactly as GRUB's script engine passed them (after
# quoting, escaping and ${var} expansion; options such as --nounzip and the
# file name included). PLATFORM: pc (default) or efi, assigned to $grub_platform.
#
# How: in the copy, loader commands (multiboot, module, multiboot2, module2,
# linux, initrd, linux16/initrd16/linuxefi/initrdefi) in command position are
# renamed gea_<cmd> (GRUB commands take precedence over functions, so renaming is
# the only safe way to shadow a loader a given grub-emu build might have);
# gea_<cmd> are GRUB functions that echo each argument. Every menuentry body
# gets `echo "@@gea-end<$chosen>"; halt` before its closing "}" (mkconfig
# layout: `menuentry ... {` and `}` on lines of their own), so grub-emu exits
# after the entry. Simple file tests of a literal absolute path, `[ -d /X ]`,
# `[ -e /X ]`, `[ -f /X ]`, are replaced by `true`: they test the boot device,
# but grub-emu's root is the host's / (where /aem/ does not exist); AEM's
# `if [ -d /aem/ ]` is true on the AEM boot device. Tests of `$var/...` paths
# (grubenv, custom.cfg) are left alone and are false under grub-emu.
# terminal_output/terminal_input/terminal are made no-ops (gfxterm under
# grub-emu draws with SDL/libcaca on the tty and garbles the output).
# An argument containing a newline or a tab cannot be represented (grub-emu's
# terminal also prints a tab as spaces).
#
# Exit: 0 ok; 1 grub-emu failed/timed out, printed no loader command, or booted
# another entry than ENTRY; 2 usage; 77 grub-emu or script(1) not installed.
set -eu

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 GRUB_CFG ENTRY [pc|efi]" >&2; exit 2
fi
cfg=$1 entry=$2 platform=${3:-pc}
case $platform in pc|efi) ;; *) echo "$0: PLATFORM must be pc or efi" >&2; exit 2 ;; esac
[ -r "$cfg" ] || { echo "$0: cannot read $cfg" >&2; exit 2; }
for t in grub-emu script timeout; do
  command -v $t >/dev/null 2>&1 || { echo "$0: $t not installed" >&2; exit 77; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/grub-emu-args.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
: > "$dir/device.map"   # no host disks: `search` fails fast, root stays (host)

loaders='multiboot module multiboot2 module2 linux initrd linux16 initrd16 linuxefi initrdefi'
lre=$(echo $loaders | tr ' ' '|')
q=$(printf '%s' "$entry" | sed "s/'/'\\\\''/g")   # for GRUB single quotes

{
  echo "set grub_platform=$platform"
  for c in $loaders; do
    echo "function gea_$c { echo \"@@gea-cmd<$c>\"; for a in \"\$@\"; do echo \"@@gea-arg<\$a>\"; done; }"
  done
  LC_ALL=C sed -E \
    -e "s/(^|[;{]|[[:space:]]then|[[:space:]]else|[[:space:]]do)([[:space:]]*)($lre)([[:space:]]|;|\$)/\1\2gea_\3\4/g" \
    -e 's/\[[[:space:]]+-[def][[:space:]]+\/[^][:space:]]*[[:space:]]+\]/true/g' \
    -e 's/(^|[;{]|[[:space:]]then|[[:space:]]else)([[:space:]]*)(terminal_output|terminal_input|terminal)([[:space:]]|;|$)/\1\2true\4/g' \
    "$cfg" |
  awk -v end='echo "@@gea-end<$chosen>"; halt' '# halt at the end of each menuentry body
    $1 == "menuentry" && /\}[[:space:]]*$/ { sub(/\}[[:space:]]*$/, "; " end " }"); print; next }
    /\{[[:space:]]*$/ { n++; kind[n] = ($1 == "menuentry") }
    /^[[:space:]]*\}[[:space:]]*$/ && n > 0 {
      if (kind[n]) print end; n--
    }
    { print }'
  echo "set pager=0"      # mkconfig headers set pager=1: "--MORE--" would wait for a key
  echo "set timeout=0"
  echo "unset fallback"
  echo "set default='$q'"
} > "$dir/grub.cfg"

# A pty is required (grub-emu's console); a huge size so GRUB never wraps lines.
rc=0
raw=$(timeout 10 script -qec "stty cols 30000 rows 10000 2>/dev/null; exec grub-emu -d '$dir' -m '$dir/device.map'" /dev/null </dev/null 2>&1) || rc=$?
clean=$(printf '%s\n' "$raw" | LC_ALL=C sed -E 's/\x1b\[[0-9;?]*[[:alpha:]]//g; s/\x1b[()][[:alnum:]]//g; s/\r//g')

printf '%s\n' "$clean" | LC_ALL=C awk -v want="$entry" '
  function flush() { if (rec != "") out = out rec "\n"; rec = "" }
  function val(s) { s = substr(s, index(s, "<") + 1); return substr(s, 1, length(s) - 1) }
  index($0, "@@gea-") > 1 { $0 = substr($0, index($0, "@@gea-")) }   # junk before a marker
  /^@@gea-cmd</ { flush(); rec = val($0); ncmd++; next }
  /^@@gea-arg</ { rec = rec "\t" val($0); next }
  /^@@gea-end</ { flush(); chosen = val($0); ended = 1; exit }
  /^  Booting `/ { t = substr($0, 12); t = substr(t, 1, length(t) - 1); gsub(/>/, ">>", t)
                   path = (path == "" ? t : path ">" t) }
  END {
    flush()
    if (!ended) { print "grub-emu-args: entry did not run to its end" > "/dev/stderr"; exit 1 }
    if (want != path && want != chosen && want !~ /^[0-9>]+$/) {
      printf "grub-emu-args: no entry \"%s\" (GRUB booted \"%s\")\n", want, path > "/dev/stderr"; exit 1 }
    if (!ncmd) { print "grub-emu-args: entry ran no loader command" > "/dev/stderr"; exit 1 }
    printf "%s", out
  }' || { echo "--- grub-emu output (rc=$rc) ---" >&2; printf '%s\n' "$clean" | grep -v '^@@gea' | tail -20 | cut -c1-200 >&2; exit 1; }
