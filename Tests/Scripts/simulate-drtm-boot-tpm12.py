#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The TPM 1.2 side of simulate-drtm-boot.py: an Intel TXT + tboot measured launch of the example
AEM entry (Vectors/expected.json, "aem-top.pc.tpm12": legacy PCR mapping, tboot's default TPM 1.2
policy: module 0 to PCR18, the others to PCR19), computed independently of aem-pcr (python3
hashlib and Vectors/expected.py, which follow tboot's source).

    simulate-drtm-boot-tpm12.py --log OUT.log [--pcrs OUT.yaml] [--replace INDEX=FILE]
        [--sinit DATA] [--luks TEXT]

Writes the log tboot reads back from SINIT for a TPM 1.2, a TXT event container ("TXT Event
Container\\0", 12 reserved bytes, versions 1.0/1.0, size, events offset, next offset, then
{u32 pcr; u32 type; u8 sha1[20]; u32 data_size; data} records: tboot include/txt/heap.h), and
prints one line for tpm12-swtpm.sh's `boot` command, which does the same extends on the TPM:
    boot SINIT-DATA 13:HEX 18:HEX 18:HEX 19:HEX 19:HEX
(PCR13: SHA-1 of the LUKS header text, as AEM's initramfs extends it; PCR17: the DRTM hash
sequence of SINIT-DATA, which the log records as its HASH_START event.)
--replace swaps module INDEX's file (0 Xen, 1 kernel, 2 initramfs), keeping its command line.
--pcrs writes the values PCR13 and PCR17-19 have after these extends (python3's replay), in
tpm2_pcrread's layout (sha1 bank), for aem-pcr's --pcrs.
"""

import argparse
import hashlib
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Vectors"))
import expected as ref  # noqa: E402


def sha1(b):
    return hashlib.sha1(b).digest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--replace", action="append", default=[])
    ap.add_argument("--pcrs")
    ap.add_argument("--sinit", default="synthetic-SINIT-ACM-for-the-aem-pcr-example")
    ap.add_argument("--luks", default="LUKS header of this disk")
    a = ap.parse_args()
    if not a.sinit or any(c.isspace() for c in a.sinit):
        sys.exit("--sinit: one word (tpm12-swtpm.sh's boot command splits at white space)")
    with open(os.path.join(ROOT, "Vectors", "expected.json")) as f:
        exp = json.load(f)
    p = next(p for p in exp["predictions"] if p["name"] == "aem-top.pc.tpm12")
    files = [os.path.join(ROOT, f) for f in p["module_files"]]
    for r in a.replace:
        i, path = r.split("=", 1)
        files[int(i)] = path
    mods = []
    for f, c in zip(files, p["module_cmdlines"]):
        with open(f, "rb") as fh:
            mods.append((fh.read(), c, False))
    with open(os.path.join(ROOT, p["boot_dir"], "tboot.gz"), "rb") as fh:
        tboot = fh.read()
    # SINIT: HASH_START (the DRTM sequence's H(SINIT)) in PCR17; the MLE hash in PCR18 (legacy).
    events = [(17, 0x402, sha1(a.sinit.encode())),
              (18, 0x404, bytes.fromhex(ref.mle_digest(tboot, p["tboot_cmdline"], "sha1")))]
    events += [(e["pcr"], 0x501, bytes.fromhex(e["digest"]))
               for e in ref.tboot_events(ref.DEF_POLICY_TPM12, mods, "1.2", ["sha1"])]
    body = b"".join(struct.pack("<II", pcr, t) + d + struct.pack("<I", 0) for pcr, t, d in events)
    size = 0x1000
    head = b"TXT Event Container\x00" + bytes(12) + bytes([1, 0, 1, 0])
    head += struct.pack("<III", size, 48, 48 + len(body))
    log = head + body
    log += bytes(size - len(log))
    with open(a.log, "wb") as fh:
        fh.write(log)
    extends = ["13:" + sha1(a.luks.encode()).hex()]
    extends += ["%d:%s" % (pcr, d.hex()) for pcr, t, d in events if t != 0x402]
    if a.pcrs:
        values = {13: sha1(bytes(20) + sha1(a.luks.encode()))}
        for i in (17, 18, 19):
            v = bytes(20)
            for pcr, _, d in events:
                if pcr == i:
                    v = sha1(v + d)
            values[i] = v
        with open(a.pcrs, "w") as fh:
            fh.write("sha1:\n" + "".join("  %d: 0x%s\n" % (i, values[i].hex().upper()) for i in sorted(values)))
    print("boot", a.sinit, *extends)


if __name__ == "__main__":
    main()
