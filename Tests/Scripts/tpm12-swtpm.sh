#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A TPM 1.2 on swtpm behind its own tcsd, owned with the well-known secrets (tpm_takeownership
# -y -z, as AEM without passwords), for the TPM 1.2 sealing tests. Nothing is shared with a
# system tcsd: the emulator, its control channel and tcsd listen on free ports chosen here
# (tcsd reaches the emulator through TCSD_TCP_DEVICE_PORT, clients reach tcsd through
# TSS_TCSD_PORT), and tcsd's system store is in a temporary directory. TPM12_TCSD_PORT in the
# environment fixes tcsd's port (a test process names one port for its whole life).
#
# usage: tpm12-swtpm.sh [--srk-password-file FILE | --no-owner]   (as root: tcsd insists on a
#        root:tss config file)
# --srk-password-file: the SRK gets the password in FILE (its first line) instead of the
# well-known secret, typed into tpm_takeownership as AEM's tpmtakeownership does (no terminal).
# --no-owner: ownership is not taken.
# Prints "ready TSS_TCSD_PORT=<port>" once the TPM is set up, then reads commands, one a line,
# answering "ok" or "fail <reason>":
#   boot DATA PCR:HEX…   power-cycle the TPM with tcsd stopped (TPM_Init, TPM_Startup(ST_CLEAR));
#                        extend each PCR below 16 at locality 0; run the DRTM sequence with DATA
#                        (swtpm_ioctl -h: PCR17-22 reset, PCR17 = SHA1(0^20 || SHA1(DATA)));
#                        extend each PCR 16 or above at locality 2; start tcsd again.
#                        HEX is the 20-byte digest extended, in order, several per PCR allowed.
#   tcsd-stop, tcsd-start
# On end of input (the test finished or died) everything is stopped and removed.
# Exit 77 when a tool is missing or not run as root.
set -euo pipefail
for t in swtpm swtpm_setup swtpm_ioctl tcsd tpm_takeownership python3; do
  command -v "$t" >/dev/null || { echo "skip: $t is missing" >&2; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "skip: tcsd needs root here" >&2; exit 77; }
own=well-known srk_file=
case ${1:-} in
  --srk-password-file) own=password srk_file=$2
                       command -v setsid >/dev/null || { echo "skip: setsid is missing" >&2; exit 77; } ;;
  --no-owner) own=none ;;
  "") ;;
  *) echo "usage: $0 [--srk-password-file FILE | --no-owner]" >&2; exit 2 ;;
esac

dir=$(mktemp -d)
swtpm_pid= tcsd_pid=
stop_tcsd() {
  if [ -n "$tcsd_pid" ]; then
    kill -TERM "$tcsd_pid" 2>/dev/null || true
    wait "$tcsd_pid" 2>/dev/null || true
    tcsd_pid=
  fi
}
cleanup() {
  stop_tcsd
  # SIGKILL: a test runner may start us with SIGTERM blocked, which swtpm would inherit.
  [ -z "$swtpm_pid" ] || { kill -KILL "$swtpm_pid" 2>/dev/null || true; wait "$swtpm_pid" 2>/dev/null || true; }
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Three free TCP ports on the loopback interface; tcsd's may be given (TPM12_TCSD_PORT).
read -r tpm_port ctrl_port tcsd_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
tcsd_port=${TPM12_TCSD_PORT:-$tcsd_port}

# Raw TPM 1.2 commands on the emulator's data channel (tcsd must be stopped: swtpm serves one
# connection at a time). TPM_Startup(ST_CLEAR) = ordinal 0x99; TPM_Extend = ordinal 0x14.
raw() {
  python3 - "$tpm_port" "$@" <<'EOF'
import socket, struct, sys
port, op, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
def send(body):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(body)
        head = b""
        while len(head) < 10: head += s.recv(10 - len(head))
        tag, size, rc = struct.unpack(">HII", head)
        rest = b""
        while len(rest) < size - 10: rest += s.recv(size - 10 - len(rest))
    if rc != 0: sys.exit("TPM returned 0x%x" % rc)
if op == "startup":
    send(struct.pack(">HIIH", 0xC1, 12, 0x99, 1))
else:
    pcr, digest = int(args[0]), bytes.fromhex(args[1])
    assert len(digest) == 20
    send(struct.pack(">HIII", 0xC1, 34, 0x14, pcr) + digest)
EOF
}

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

start_tcsd() {
  TCSD_TCP_DEVICE_PORT=$tpm_port tcsd -e -f -c "$dir/tcsd.conf" >>"$dir/tcsd.log" 2>&1 &
  tcsd_pid=$!
  wait_port "$tcsd_port" || { echo "fail tcsd did not start: $(tail -c 300 "$dir/tcsd.log" | tr '\n' ' ')"; return 1; }
}

mkdir "$dir/state" "$dir/ps"
chown tss:tss "$dir/state" "$dir/ps" 2>/dev/null || true
swtpm_setup --tpmstate "$dir/state" --createek >"$dir/setup.log" 2>&1 \
  || { echo "fail swtpm_setup: $(tail -c 300 "$dir/setup.log" | tr '\n' ' ')"; exit 1; }
swtpm socket --tpmstate dir="$dir/state" --server type=tcp,port="$tpm_port" \
  --ctrl type=tcp,port="$ctrl_port" --flags startup-clear >"$dir/swtpm.log" 2>&1 &
swtpm_pid=$!
wait_port "$ctrl_port" || { echo "fail swtpm did not start"; exit 1; }

# tcsd refuses a config file that is not root:tss, mode 0640.
printf 'port = %s\nsystem_ps_file = %s\n' "$tcsd_port" "$dir/ps/system.data" >"$dir/tcsd.conf"
chown root:tss "$dir/tcsd.conf"
chmod 0640 "$dir/tcsd.conf"
start_tcsd || exit 1
export TSS_TCSD_PORT=$tcsd_port
case $own in
  well-known) tpm_takeownership -y -z >"$dir/own.log" 2>&1 ;;
  # getpass() reads the terminal when there is one: setsid leaves none, so it reads stdin.
  password) pw=$(head -n 1 "$srk_file")
            printf '%s\n%s\n' "$pw" "$pw" | setsid -w tpm_takeownership -y >"$dir/own.log" 2>&1 ;;
  none) true ;;
esac || { echo "fail tpm_takeownership: $(tr '\n' ' ' <"$dir/own.log")"; exit 1; }
echo "ready TSS_TCSD_PORT=$tcsd_port"

boot() {
  local data=$1; shift
  stop_tcsd
  swtpm_ioctl --tcp "127.0.0.1:$ctrl_port" -i >/dev/null || { echo "fail TPM_Init"; return; }
  raw startup || { echo "fail TPM_Startup"; return; }
  local e
  for e in "$@"; do
    [ "${e%%:*}" -lt 16 ] || continue
    raw extend "${e%%:*}" "${e#*:}" || { echo "fail extend $e"; return; }
  done
  swtpm_ioctl --tcp "127.0.0.1:$ctrl_port" -h "$data" >/dev/null || { echo "fail DRTM hash sequence"; return; }
  swtpm_ioctl --tcp "127.0.0.1:$ctrl_port" -l 2 >/dev/null || { echo "fail locality 2"; return; }
  for e in "$@"; do
    [ "${e%%:*}" -ge 16 ] || continue
    raw extend "${e%%:*}" "${e#*:}" || { echo "fail extend $e at locality 2"; return; }
  done
  swtpm_ioctl --tcp "127.0.0.1:$ctrl_port" -l 0 >/dev/null || { echo "fail locality 0"; return; }
  start_tcsd || return
  echo ok
}

while read -r command args; do
  case $command in
    boot) # shellcheck disable=SC2086
          boot $args 2>>"$dir/boot.log" ;;
    tcsd-stop) stop_tcsd; echo ok ;;
    tcsd-start) start_tcsd && echo ok ;;
    *) echo "fail unknown command $command" ;;
  esac
done
