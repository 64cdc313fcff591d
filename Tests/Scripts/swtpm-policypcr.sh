#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Computes a PolicyPCR digest with tpm2-tools on a fresh software TPM (swtpm): a trial session,
# then tpm2_policypcr over the given selection with the PCR values read from FILE.
# usage: swtpm-policypcr.sh SELECTION FILE   (SELECTION as sha256:17,18,19)
# Prints the policy digest in hex. Exit 77 when swtpm or tpm2-tools are missing.
set -euo pipefail
for t in swtpm tpm2_startauthsession tpm2_policypcr tpm2_flushcontext; do command -v "$t" >/dev/null || exit 77; done
. "$(dirname "$0")/swtpm2-start.sh"
tpm2_startauthsession -S "$dir/session" >/dev/null
tpm2_policypcr -S "$dir/session" -l "$1" -f "$2" -L "$dir/policy" >/dev/null
tpm2_flushcontext "$dir/session" >/dev/null
od -An -v -tx1 "$dir/policy" | tr -d ' \n'
echo
