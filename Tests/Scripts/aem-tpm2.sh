#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Anti Evil Maid's own TPM 2.0 commands (qubes-antievilmaid 4.2.0, sbin/anti-evil-maid-lib-tpm2:
# tpmtakeownership, tpmsealprepare, tpmsealdata, tpmunsealdata; sbin/anti-evil-maid-seal's loop),
# as shell commands against the TPM named by TPM2TOOLS_TCTI. The reference the seal tests
# compare with: AEM's files made and read by tpm2-tools and openssl, never by aem-pcr.
#   aem-tpm2.sh setup OWNER_PW SRK_PASSWORD_FILE
#   aem-tpm2.sh seal SRK_PASSWORD_FILE SECRETS_DIR SEALED_DIR      (AEM's seal of every secret)
#   aem-tpm2.sh unseal SRK_PASSWORD_FILE SEALED_DIR OUT_DIR        (AEM's unseal of every secret)
set -euo pipefail
SRK=0x81000001
SEAL="--pcr 13 --pcr 17 --pcr 18 --pcr 19"
hex() { xxd -ps | tr -dc 0-9a-f; }
# Every scratch file (key contexts, the policy digest, the session) lives in one private directory
# removed on exit, also when a command fails under set -e (an unseal refused by the TPM used to
# leave its context file in /tmp).
scratch=$(mktemp -d "${TMPDIR:-/tmp}/aem-tpm2.XXXXXX")
cleanup() {
    tpm2_flushcontext -t >/dev/null 2>&1 || true; tpm2_flushcontext -s >/dev/null 2>&1 || true
    rm -rf "$scratch"
}
trap cleanup EXIT

case "$1" in
setup)
    opw=$2; srkpw=$(cat "$3")
    tpm2_changeauth --quiet -c owner "$opw"
    tpm2_changeauth --quiet -c lockout "$opw"
    ctx=$scratch/primary.ctx
    tpm2_createprimary -Q --hierarchy=o --key-context="$ctx" --key-auth="$srkpw" -P "$opw"
    tpm2_evictcontrol -Q -C o -P "$opw" -c "$ctx" "$SRK"
    rm -f "$ctx"
    ;;
seal)
    pwfile=$2; secrets=$3; dir=$4
    mkdir -p "$dir"
    # tpmsealprepare
    _pcrs=$(printf %s "$SEAL" | grep -Eo '\b[0-9]+\b')
    _pcrs=sha256:${_pcrs//$'\n'/,}
    _policy=$scratch/policy; _session=$scratch/session
    tpm2_startauthsession -S "$_session"
    tpm2_policypcr -Q -S "$_session" -l "$_pcrs" -L "$_policy"
    tpm2_flushcontext "$_session"
    rm "$_session"
    tpm2_flushcontext -t
    head -c 16 /dev/urandom |
        tpm2_create -Q -C "$SRK" -P "str:$(cat "$pwfile")" \
                    -L "$_policy" -i - -u "$dir/key.pub" -r "$dir/key.priv"
    echo "$_pcrs" > "$dir/key.pcrs"
    rm "$_policy"
    # tpmsealdata for each secret
    for ext in txt key otp fre; do
        [ -e "$secrets/secret.$ext" ] || continue
        _ctx=$scratch/key.ctx
        tpm2_load -Q -C "$SRK" -P "str:$(cat "$pwfile")" \
                  --private "$dir/key.priv" --public "$dir/key.pub" -c "$_ctx"
        tpm2_unseal -Q -c "$_ctx" -p "pcr:$_pcrs" | hex |
            openssl enc -aes-256-ctr -pbkdf2 -e -kfile - -in "$secrets/secret.$ext" -out "$dir/secret.$ext.sealed2"
        tpm2_flushcontext -t
        rm "$_ctx"
    done
    ;;
unseal)
    pwfile=$2; dir=$3; out=$4
    mkdir -p "$out"
    _pcrs=$(cat "$dir/key.pcrs")
    for f in "$dir"/secret.*.sealed2; do
        ext=${f##*/secret.}; ext=${ext%.sealed2}
        _ctx=$scratch/key.ctx
        tpm2_load -Q -C "$SRK" -P "str:$(cat "$pwfile")" \
                  --private "$dir/key.priv" --public "$dir/key.pub" -c "$_ctx" 2>/dev/null
        tpm2_unseal -Q -c "$_ctx" -p "pcr:$_pcrs" | hex |
            openssl enc -aes-256-ctr -pbkdf2 -d -kfile - -in "$f" -out "$out/secret.$ext"
        tpm2_flushcontext -t
        rm "$_ctx"
    done
    ;;
*) echo "usage: aem-tpm2.sh setup|seal|unseal ..." >&2; exit 2 ;;
esac
