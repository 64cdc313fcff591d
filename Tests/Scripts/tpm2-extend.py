#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Sends TPM2_PCR_Extend straight to a swtpm data socket (unixio), so that PCR17-19 can be
# extended at the locality set with `swtpm_ioctl -l N` (tpm2-tools' swtpm TCTI would reset it).
# usage: tpm2-extend.py SOCKET PCR ALG=HEX [ALG=HEX ...]     (ALG: sha1 sha256 sha384 sha512)
# Independent of aem-pcr: the command is marshaled here from TPM 2.0 Part 3 (TPM2_PCR_Extend).
import socket, struct, sys

ALGS = {"sha1": 0x0004, "sha256": 0x000B, "sha384": 0x000C, "sha512": 0x000D}
sock_path, pcr = sys.argv[1], int(sys.argv[2])
digests = b""
for arg in sys.argv[3:]:
    name, hexval = arg.split("=", 1)
    digests += struct.pack(">H", ALGS[name]) + bytes.fromhex(hexval)
# password session TPM_RS_PW, empty nonce, no attributes, empty password
auth = struct.pack(">IHBH", 0x40000009, 0, 0, 0)
body = struct.pack(">I", pcr) + struct.pack(">I", len(auth)) + auth
body += struct.pack(">I", len(sys.argv) - 3) + digests
cmd = struct.pack(">HII", 0x8002, 10 + len(body), 0x182) + body
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
s.sendall(cmd)
resp = s.recv(4096)
tag, size, rc = struct.unpack(">HII", resp[:10])
if rc != 0:
    sys.exit("TPM2_PCR_Extend(PCR%d) failed: 0x%x" % (pcr, rc))
