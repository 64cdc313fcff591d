#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs a DRTM hash sequence on a fresh software TPM (swtpm) and prints tpm2_pcrread's YAML for
# PCR16-19 in the SHA-1 and SHA-256 banks: PCR17 = H(0 || H(DATA)), PCR18/19 = 0 after launch.
# usage: swtpm-drtm.sh DATA [--no-launch]   Exit 77 when swtpm or tpm2-tools are missing.
set -euo pipefail
for t in swtpm swtpm_ioctl tpm2_pcrread; do command -v "$t" >/dev/null || exit 77; done
. "$(dirname "$0")/swtpm2-start.sh"
[ "${2:-}" = "--no-launch" ] || swtpm_ioctl --unix "$dir/sock.ctrl" -h "$1"
tpm2_pcrread sha1:16,17,18,19+sha256:16,17,18,19 2>/dev/null
