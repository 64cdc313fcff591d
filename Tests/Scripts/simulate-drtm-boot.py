#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Simulates an Intel TXT + tboot measured launch on a software TPM 2.0 (swtpm), independently of
aem-pcr: every digest is computed here (python3 hashlib, and Vectors/expected.py's functions,
which follow tboot's source), the TPM is driven with raw commands, and the TCG event log SINIT and
tboot would have written is written beside it.

    simulate-drtm-boot.py --server SOCK --ctrl SOCK --log OUT.log [--boot FILE.json]
        [--replace INDEX=FILE] [--policy FILE] [--extra-extend] [--print-pcrs]

The boot defaults to the example AEM entry of Vectors/expected.json (TPM 2.0, extpol=embedded,
default DA policy, banks sha1 + sha256). --policy FILE uses tboot's policy from TPM NV
(tb_polgen's format) instead of the default one. --replace swaps module INDEX's file (0 Xen, 1 kernel,
2 initramfs) keeping its command line. Steps, as the hardware does them:
  1. the DRTM hash sequence at locality 4 (`swtpm_ioctl -h SINIT`): PCR17-22 reset to zero and
     PCR17 extended with H(SINIT) in every bank;
  2. SINIT's further events (synthetic ACM data; each digest = H(data)) and the MLE hash, then
     tboot's events (policy, modules), extended at locality 2 with TPM2_PCR_Extend;
  3. the TCG crypto-agile log of all of them written to OUT.log.
--extra-extend adds one more PCR17 extend that the log does not record (a log that must not
verify). --print-pcrs prints the PCR17-19 values a replay gives, as tpm2_pcrread YAML.
"""

import argparse
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Vectors"))
import expected as ref  # noqa: E402  (tboot's measurement rules, python3 only)

ALG = {"sha1": 0x0004, "sha256": 0x000B, "sha384": 0x000C, "sha512": 0x000D}
BANKS = ["sha1", "sha256"]
SINIT = b"synthetic SINIT ACM for the aem-pcr tests" * 64


def H(bank, data):
    return hashlib.new(bank, data).digest()


def le32(v):
    return struct.pack("<I", v)


def default_boot():
    with open(os.path.join(ROOT, "Vectors", "expected.json")) as f:
        exp = json.load(f)
    p = next(p for p in exp["predictions"] if p["name"].endswith("tpm20-embedded"))
    return {
        "tboot": os.path.join(ROOT, p["boot_dir"], "tboot.gz"),
        "tboot_cmdline": p["tboot_cmdline"],
        "modules": [{"file": os.path.join(ROOT, f), "cmdline": c}
                    for f, c in zip(p["module_files"], p["module_cmdlines"])],
    }


def events_for(boot, policy=None):
    """[(pcr, type, {bank: digest}, data)] in the order SINIT and tboot extend them."""
    ev = []

    def sinit(pcr, type_, data):
        ev.append((pcr, type_, {b: H(b, data) for b in BANKS}, data))

    # 1. _TPM_Hash_Start/Data/End: the HASH_START event records H(SINIT), no data.
    ev.append((17, 0x402, {b: H(b, SINIT) for b in BANKS}, b""))
    sinit(17, 0x40A, bytes.fromhex("000000002408182007b000000002000000000000000000000400000000000000"))
    sinit(17, 0x40B, le32(1))
    sinit(17, 0x40C, le32(0))
    sinit(17, 0x40F, bytes.fromhex("01060000"))
    with open(boot["tboot"], "rb") as f:
        tboot = f.read()
    ev.append((17, 0x404, {b: bytes.fromhex(ref.mle_digest(tboot, boot["tboot_cmdline"], b)) for b in BANKS}, b""))
    ev.append((18, 0x410, {b: H(b, b"synthetic SINIT public key") for b in BANKS}, b""))
    sinit(18, 0x40B, le32(1))
    # 2. tboot, extpol=embedded, default DA policy (any module -> PCR17).
    mods = []
    for m in boot["modules"]:
        with open(m["file"], "rb") as f:
            mods.append((f.read(), m["cmdline"], m.get("nounzip", False)))
    flat = ref.tboot_events(policy or ref.DEF_POLICY_DA, mods, "2.0", BANKS, extpol="embedded")
    for k in range(0, len(flat), len(BANKS)):
        group = flat[k:k + len(BANKS)]
        ev.append((group[0]["pcr"], 0x501, {e["bank"]: bytes.fromhex(e["digest"]) for e in group}, b""))
    return ev


def tcg_log(events):
    spec = b"Spec ID Event03\x00" + le32(0) + bytes([0, 2, 0, 2]) + le32(len(BANKS))
    for b in BANKS:
        spec += struct.pack("<HH", ALG[b], hashlib.new(b).digest_size)
    spec += b"\x00"
    out = le32(0) + le32(3) + bytes(20) + le32(len(spec)) + spec
    for pcr, type_, digests, data in events:
        out += le32(pcr) + le32(type_) + le32(len(digests))
        for b in BANKS:
            out += struct.pack("<H", ALG[b]) + digests[b]
        out += le32(len(data)) + data
    return out


def tpm_command(sock_path, command):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sock_path)
        s.sendall(command)
        head = b""
        while len(head) < 10:
            chunk = s.recv(10 - len(head))
            if not chunk:
                raise SystemExit("swtpm closed the connection")
            head += chunk
        tag, size, rc = struct.unpack(">HII", head)
        rest = b""
        while len(head) + len(rest) < size:
            rest += s.recv(size - len(head) - len(rest))
        return rc


def pcr_extend(sock_path, pcr, digests):
    """TPM2_PCR_Extend (TPM 2.0 Part 3, 22.2) with an empty password session. digests: bank name
    to digest, or (bank, digest) pairs in the order to send them (trenchboot-log.py's)."""
    body = struct.pack(">I", pcr)
    auth = struct.pack(">IHBH", 0x40000009, 0, 0, 0)
    body += struct.pack(">I", len(auth)) + auth
    body += struct.pack(">I", len(digests))
    for b, d in (digests.items() if isinstance(digests, dict) else digests):
        body += struct.pack(">H", ALG[b]) + d
    cmd = struct.pack(">HII", 0x8002, 10 + len(body), 0x182) + body
    rc = tpm_command(sock_path, cmd)
    if rc != 0:
        raise SystemExit("TPM2_PCR_Extend of PCR%d failed: 0x%x" % (pcr, rc))


def replay(events, bank, pcr):
    v = bytes(hashlib.new(bank).digest_size)
    for p, _, d, _ in events:
        if p == pcr:
            v = H(bank, v + d[bank])
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server")
    ap.add_argument("--ctrl")
    ap.add_argument("--log", required=True)
    ap.add_argument("--boot")
    ap.add_argument("--replace", action="append", default=[])
    ap.add_argument("--extra-extend", action="store_true")
    ap.add_argument("--print-pcrs", action="store_true")
    ap.add_argument("--no-tpm", action="store_true", help="only write the log")
    ap.add_argument("--policy", help="tboot's policy as tb_polgen writes it (in TPM NV) instead of the default")
    a = ap.parse_args()
    boot = default_boot()
    if a.boot:
        with open(a.boot) as f:
            boot = json.load(f)
    for r in a.replace:
        i, path = r.split("=", 1)
        boot["modules"][int(i)]["file"] = path
    policy = None
    if a.policy:
        with open(a.policy, "rb") as f:
            policy = f.read()
    events = events_for(boot, policy)
    if not a.no_tpm:
        subprocess.run(["swtpm_ioctl", "--unix", a.ctrl, "-h", "-"], input=SINIT, check=True)
        subprocess.run(["swtpm_ioctl", "--unix", a.ctrl, "-l", "2"], check=True, stdout=subprocess.DEVNULL)
        for pcr, type_, digests, _ in events[1:]:
            pcr_extend(a.server, pcr, digests)
        if a.extra_extend:
            pcr_extend(a.server, 17, {b: H(b, b"not in the log") for b in BANKS})
        subprocess.run(["swtpm_ioctl", "--unix", a.ctrl, "-l", "0"], check=True, stdout=subprocess.DEVNULL)
    with open(a.log, "wb") as f:
        f.write(tcg_log(events))
    if a.print_pcrs:
        for b in BANKS:
            print("  %s:" % b)
            for pcr in (17, 18, 19):
                print("    %d: 0x%s" % (pcr, replay(events, b, pcr).hex().upper()))


if __name__ == "__main__":
    main()
