# SPDX-License-Identifier: Apache-2.0
# Sourced by the swtpm-*.sh scripts: starts a fresh software TPM 2.0 (swtpm) in a scratch
# directory, points tpm2-tools at it and removes both on exit. Sets `dir` and `pid`.
dir=$(mktemp -d)
# SIGKILL: a test runner may start us with SIGTERM blocked, which swtpm would inherit.
trap 'kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
swtpm socket --tpm2 --tpmstate dir="$dir" --server type=unixio,path="$dir/sock" \
  --ctrl type=unixio,path="$dir/sock.ctrl" --flags not-need-init,startup-clear >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 50); do [ -S "$dir/sock.ctrl" ] && [ -S "$dir/sock" ] && break; sleep 0.1; done
export TPM2TOOLS_TCTI="swtpm:path=$dir/sock"
