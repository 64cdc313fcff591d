#!/usr/bin/env bash
# Computes a PolicyPCR digest with tpm2-tools on a fresh software TPM (swtpm): a trial session,
# then tpm2_policypcr over the given selection with the PCR values read from FILE.
# usage: swtpm-policypcr.sh SELECTION FILE   (SELECTION as sha256:17,18,19)
# Prints the policy digest in hex. Exit 77 when swtpm or tpm2-tools are missing.
set -euo pipefail
for t in swtpm tpm2_startauthsession tpm2_policypcr tpm2_flushcontext; do command -v "$t" >/dev/null || exit 77; done
dir=$(mktemp -d)
# SIGKILL: a test runner may start us with SIGTERM blocked, which swtpm would inherit.
trap 'kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
swtpm socket --tpm2 --tpmstate dir="$dir" --server type=unixio,path="$dir/sock" \
  --ctrl type=unixio,path="$dir/sock.ctrl" --flags not-need-init,startup-clear >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 50); do [ -S "$dir/sock.ctrl" ] && [ -S "$dir/sock" ] && break; sleep 0.1; done
export TPM2TOOLS_TCTI="swtpm:path=$dir/sock"
tpm2_startauthsession -S "$dir/session" >/dev/null
tpm2_policypcr -S "$dir/session" -l "$1" -f "$2" -L "$dir/policy" >/dev/null
tpm2_flushcontext "$dir/session" >/dev/null
od -An -v -tx1 "$dir/policy" | tr -d ' \n'
echo
