#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole AEM update story on a software TPM, without TXT hardware: a measured launch of the
# example boot files (Vectors/example), the AEM secret sealed as AEM seals it (its own
# tpm2-tools / tpm-tools commands, Tests/Scripts/aem-tpm2.sh), a Xen update (new xen.gz bytes),
# `aem-pcr diff` and `aem-pcr seal` before the reboot, the simulated reboot into the new files,
# AEM's unseal showing the secret, `aem-pcr check-boot`; then a tampered initramfs that AEM's
# unseal refuses and check-boot names.
#
#   examples/simulated-update.sh [2.0|1.2|both]        (default: both)
#
# Needs a built aem-pcr (`swift build`; AEM_PCR=path to use another) and the Debian packages
# swtpm, swtpm-tools, tpm2-tools, openssl, xxd, python3; TPM 1.2 also trousers (tcsd) and
# tpm-tools, and root (tcsd insists on a root-owned configuration). Everything it starts
# (swtpm, tcsd) is stopped and everything it creates (one temporary directory) is removed
# when it ends, however it ends.
#
# The measured launch is simulated: SINIT's and tboot's extends are done on swtpm by
# Tests/Scripts/simulate-drtm-boot.py (TPM 2.0) and simulate-drtm-boot-tpm12.py with
# tpm12-swtpm.sh (TPM 1.2), which compute every digest with python3 from tboot's rules and
# write the DRTM event log SINIT and tboot would have written. The AEM boot device is a
# directory (--aem-mount) holding AEM's layout, aem/tpms/ID/aem.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
which=${1:-both}
case $which in 2.0|1.2|both) ;; *) echo "usage: $0 [2.0|1.2|both]" >&2; exit 2 ;; esac
if [ -z "${AEM_PCR:-}" ]; then
  AEM_PCR=$repo/.build/debug/aem-pcr
  [ -x "$repo/.build/release/aem-pcr" ] && AEM_PCR=$repo/.build/release/aem-pcr
fi
[ -x "$AEM_PCR" ] || { echo "$0: no aem-pcr at $AEM_PCR: run swift build first (or set AEM_PCR)" >&2; exit 2; }
need() { command -v "$1" >/dev/null || { echo "$0: $1 is missing (Debian package $2)" >&2; exit 2; }; }
for t in swtpm:swtpm swtpm_ioctl:swtpm-tools tpm2_pcrread:tpm2-tools openssl:openssl xxd:xxd python3:python3; do
  need "${t%%:*}" "${t#*:}"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/aem-pcr-walkthrough.XXXXXX")
swtpm_pid= tpm12_pid= tpm12_in= tpm12_out=
cleanup() {
  if [ -n "$swtpm_pid" ]; then kill -KILL "$swtpm_pid" 2>/dev/null || true; wait "$swtpm_pid" 2>/dev/null || true; fi
  if [ -n "$tpm12_pid" ]; then
    # tpm12-swtpm.sh stops tcsd and swtpm, and removes its directory, at the end of its input.
    [ -z "$tpm12_in" ] || eval "exec $tpm12_in>&-"
    wait "$tpm12_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

cd "$repo"
entry='AEM Qubes, with Xen hypervisor'
entry_args=(--grub-cfg Vectors/example/grub.cfg --entry "$entry")
id=0123456789abcdef0123456789abcdef01234567   # the TPM ID (AEM: tpm2_id / tpm_id)
secret='Hello from AEM: the pictures of my cat'
say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s|$work|\$WORK|g; s|$AEM_PCR|aem-pcr|"; "$@"; }

# One machine's files: /boot, AEM's secrets and sealed sets (/var/lib/tpm -> tpms/ID, as
# trousers_changer_identify links it) and the AEM boot device (a directory).
machine() {
  m=$work/$1
  mkdir -p "$m/boot" "$m/var/lib/anti-evil-maid/aem" "$m/var/lib/tpms/$id" "$m/aem-device/aem/tpms/$id"
  cp Vectors/example/boot/* "$m/boot/"
  ln -s "tpms/$id" "$m/var/lib/tpm"
  # As trousers_changer_identify leaves it on every AEM boot: install -d -m 700 -o tss -g tss
  chmod 700 "$m/var/lib/tpms/$id"
  if [ "$(id -u)" = 0 ] && id tss >/dev/null 2>&1; then chown tss:tss "$m/var/lib/tpms/$id"; fi
  printf '%s\n' "$secret" >"$m/var/lib/anti-evil-maid/aem/secret.txt"
  printf 'srk password\n' >"$m/srk-password"
  # AEM's synctpms, once at set-up: the device holds a copy of the set
}
synctpms() { rm -rf "$m/aem-device/aem/tpms/$id/aem"; cp -r "$m/var/lib/tpms/$id/aem" "$m/aem-device/aem/tpms/$id/"; }
update_xen() {
  # The update: new bytes in xen-4.17.5.gz (a security fix), same name, same command line.
  python3 - "$m/boot/xen-4.17.5.gz" <<'EOF'
import gzip, sys
d = gzip.decompress(open(sys.argv[1], "rb").read())
open(sys.argv[1], "wb").write(gzip.compress(d + b"\0XSA-466 fix\0", mtime=0))
EOF
}
tamper_initramfs() {
  python3 - "$m/boot/initramfs-6.6.63-1.qubes.fc37.x86_64.img" "$m/tampered.img" <<'EOF'
import gzip, sys
d = gzip.decompress(open(sys.argv[1], "rb").read())
open(sys.argv[2], "wb").write(gzip.compress(d + b"evil maid was here", mtime=0))
EOF
}

tpm20() {
  say "TPM 2.0: a software TPM, AEM set up on it"
  machine tpm2
  mkdir "$m/swtpm"
  swtpm socket --tpm2 --tpmstate dir="$m/swtpm" --server type=unixio,path="$m/swtpm/sock" \
    --ctrl type=unixio,path="$m/swtpm/sock.ctrl" --flags not-need-init,startup-clear >/dev/null 2>&1 &
  swtpm_pid=$!
  for _ in $(seq 100); do [ -S "$m/swtpm/sock.ctrl" ] && break; sleep 0.05; done
  export TPM2TOOLS_TCTI="swtpm:path=$m/swtpm/sock"
  local ctrl=$m/swtpm/sock.ctrl tcti=$TPM2TOOLS_TCTI
  bash Tests/Scripts/aem-tpm2.sh setup "owner password" "$m/srk-password"
  # tboot's default policy measures every module into PCR17 on a TPM 2.0 and PCR19 stays 00,
  # which AEM's default SEAL (13,17,18,19) cannot seal to. This machine takes the second way
  # out AEM supports: a tboot policy in the TPM's NV that measures the modules into PCR19.
  echo 02000b01000000000000000300ff00000000000081130000000000008316001000004000 | xxd -r -p >"$m/boot/tboot-policy.pol"
  launch() {  # $1 log, then simulate-drtm-boot.py's --replace arguments
    local log=$1; shift
    python3 Tests/Scripts/simulate-drtm-boot.py --server "$m/swtpm/sock" --ctrl "$ctrl" --log "$log" \
      --policy "$m/boot/tboot-policy.pol" "$@"
    # AEM's initramfs extends PCR13 with the LUKS header at every boot
    tpm2_pcrextend "13:sha256=$(printf 'LUKS header of this disk' | sha256sum | cut -d' ' -f1)"
  }
  reboot() { swtpm_ioctl --unix "$ctrl" -i; tpm2_startup -c; }
  aem_unseal() {  # AEM's initramfs: the set from the device, tpm2_unseal + openssl
    rm -rf "$m/unsealed"
    if bash Tests/Scripts/aem-tpm2.sh unseal "$m/srk-password" "$m/aem-device/aem/tpms/$id/aem" "$m/unsealed" 2>/dev/null; then
      echo "AEM's unseal shows the secret: $(cat "$m/unsealed/secret.txt")"
    else
      echo "AEM's unseal refuses: the TPM does not release the key for these PCRs"
    fi
  }

  say "TPM 2.0: boot A (the installed files), AEM seals its secret as it does at every boot"
  launch "$m/A.log"
  bash Tests/Scripts/aem-tpm2.sh seal "$m/srk-password" "$m/var/lib/anti-evil-maid/aem" "$m/var/lib/tpm/aem"
  synctpms
  aem_unseal

  say "TPM 2.0: the update installs new Xen bytes; what changes, and the pre-seal"
  update_xen
  tpm2_pcrread sha1:13,17,18,19+sha256:13,17,18,19 >"$m/pcrs-A.yaml"
  common=("${entry_args[@]}" --boot-dir "$m/boot" --policy "$m/boot/tboot-policy.pol" --extpol embedded --event-log "$m/A.log")
  run "$AEM_PCR" diff "${common[@]}" --pcrs "$m/pcrs-A.yaml" || true
  run "$AEM_PCR" seal --label aem --aem-dir "$m/var/lib/anti-evil-maid" --tpm-dir "$m/var/lib/tpm" \
    --aem-mount "$m/aem-device" --srk-password-file "$m/srk-password" --tcti "$tcti" "${common[@]}"
  aem_unseal

  say "TPM 2.0: reboot into the new files"
  reboot
  launch "$m/B.log" --replace "0=$m/boot/xen-4.17.5.gz"
  aem_unseal
  run "$AEM_PCR" check-boot --label aem --tpm-dir "$m/var/lib/tpm" --aem-mount "$m/aem-device" \
    --event-log "$m/B.log" --tcti "$tcti"

  say "TPM 2.0: an evil maid changes the initramfs; reboot"
  tamper_initramfs
  reboot
  launch "$m/T.log" --replace "0=$m/boot/xen-4.17.5.gz" --replace "2=$m/tampered.img"
  aem_unseal
  run "$AEM_PCR" check-boot --label aem --tpm-dir "$m/var/lib/tpm" --aem-mount "$m/aem-device" \
    --event-log "$m/T.log" --tcti "$tcti" && { echo "check-boot accepted a tampered boot" >&2; exit 1; } || true

  kill -KILL "$swtpm_pid"; wait "$swtpm_pid" 2>/dev/null || true; swtpm_pid=
  unset TPM2TOOLS_TCTI
}

tpm12() {
  for t in tcsd:trousers tpm_sealdata:tpm-tools tpm_unsealdata:tpm-tools swtpm_setup:swtpm-tools; do need "${t%%:*}" "${t#*:}"; done
  [ "$(id -u)" = 0 ] || { echo "$0: the TPM 1.2 story needs root (tcsd insists on a root-owned configuration)" >&2; exit 2; }
  say "TPM 1.2: a software TPM behind its own tcsd, owned as AEM owns it without an SRK password"
  machine tpm12
  coproc TPM12 { bash Tests/Scripts/tpm12-swtpm.sh; }
  tpm12_pid=$TPM12_PID tpm12_in=${TPM12[1]} tpm12_out=${TPM12[0]}
  local ready
  read -r ready <&"$tpm12_out"
  case $ready in ready\ TSS_TCSD_PORT=*) export TSS_TCSD_PORT=${ready#ready TSS_TCSD_PORT=} ;;
    *) echo "$0: tpm12-swtpm.sh: $ready" >&2; exit 1 ;; esac
  launch() {  # $1 name, then simulate-drtm-boot-tpm12.py's --replace arguments
    local name=$1 line answer; shift
    line=$(python3 Tests/Scripts/simulate-drtm-boot-tpm12.py --log "$m/$name.log" --pcrs "$m/pcrs-$name.yaml" "$@")
    echo "$line" >&"$tpm12_in"
    read -r answer <&"$tpm12_out"
    [ "$answer" = ok ] || { echo "$0: TPM 1.2 boot: $answer" >&2; exit 1; }
  }
  aem_unseal() {  # AEM's initramfs: tpm_unsealdata -z of the device's copy
    rm -f "$m/unsealed.txt"
    if tpm_unsealdata -z -i "$m/aem-device/aem/tpms/$id/aem/secret.txt.sealed2" -o "$m/unsealed.txt" 2>/dev/null; then
      echo "AEM's unseal shows the secret: $(cat "$m/unsealed.txt")"
    else
      echo "AEM's unseal refuses: the TPM does not release the key for these PCRs"
    fi
  }

  say "TPM 1.2: boot A (the installed files), AEM seals its secret (tpm_sealdata -z \$SEAL)"
  launch A
  mkdir -p "$m/var/lib/tpm/aem"
  tpm_sealdata -z --pcr 13 --pcr 17 --pcr 18 --pcr 19 -i "$m/var/lib/anti-evil-maid/aem/secret.txt" \
    -o "$m/var/lib/tpm/aem/secret.txt.sealed2"
  synctpms
  aem_unseal

  say "TPM 1.2: the update installs new Xen bytes; what changes, and the pre-seal"
  update_xen
  common=("${entry_args[@]}" --boot-dir "$m/boot" --event-log "$m/A.log")
  run "$AEM_PCR" diff "${common[@]}" --pcrs "$m/pcrs-A.yaml" || true
  run "$AEM_PCR" seal --label aem --aem-dir "$m/var/lib/anti-evil-maid" --tpm-dir "$m/var/lib/tpm" \
    --aem-mount "$m/aem-device" --srk-well-known "${common[@]}"
  aem_unseal

  say "TPM 1.2: reboot into the new files"
  launch B --replace "0=$m/boot/xen-4.17.5.gz"
  aem_unseal
  run "$AEM_PCR" check-boot --label aem --tpm-dir "$m/var/lib/tpm" --aem-mount "$m/aem-device" --event-log "$m/B.log"

  say "TPM 1.2: an evil maid changes the initramfs; reboot"
  tamper_initramfs
  launch T --replace "0=$m/boot/xen-4.17.5.gz" --replace "2=$m/tampered.img"
  aem_unseal
  run "$AEM_PCR" check-boot --label aem --tpm-dir "$m/var/lib/tpm" --aem-mount "$m/aem-device" \
    --event-log "$m/T.log" && { echo "check-boot accepted a tampered boot" >&2; exit 1; } || true

  eval "exec $tpm12_in>&-"
  wait "$tpm12_pid" 2>/dev/null || true
  tpm12_pid= tpm12_in=
  unset TSS_TCSD_PORT
}

case $which in
  2.0) tpm20 ;;
  1.2) tpm12 ;;
  both) tpm20
        if [ "$(id -u)" = 0 ]; then tpm12
        else say "TPM 1.2: skipped, it needs root (tcsd insists on a root-owned configuration): sudo $0 1.2"; fi ;;
esac
say "Done: every secret shown by AEM's own unseal after the update, every tampered boot refused"
