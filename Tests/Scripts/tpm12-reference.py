#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Independent TPM 1.2 reference for the sealing tests (hashlib only, no project code).

  tpm12-reference.py pcrs JSON
      JSON: {"drtm": "<DATA given to swtpm_ioctl -h>" or null,
             "extends": {"13": ["<hex digest>", ...], ...}}
      Prints {"pcrs": {"13": "<hex>", ...}, "composite": "<hex>"}: the PCR values after a
      power-on (static PCRs 0, dynamic PCRs 17-22 0 after the DRTM sequence, which extends
      SHA1(DATA) into PCR17), then the extends in order; the composite is SHA1 of
      TPM_PCR_COMPOSITE (TPM Main Part 2, 8.1/8.2) over every PCR named.
  tpm12-reference.py composite JSON
      JSON: {"13": "<hex>", ...}; prints the TPM_COMPOSITE_HASH in hex.
  tpm12-reference.py file FILE
      Decodes a tpm_sealdata file (tpm-tools include/tpm_seal.h, lib/tpm_unseal.c) and prints
      its frame lines, the longest base64 line, the storage key's parameters up to its public
      key (TPM_KEY, Part 2 10.2) and the sealed blob's release fields (TPM_STORED_DATA12 and
      TPM_PCR_INFO_LONG, Part 2 9.3 and 8.4).
"""
import base64, hashlib, json, struct, sys


def composite(values):
    order = sorted(int(k) for k in values)
    bitmap = bytearray(3)
    for i in order:
        bitmap[i // 8] |= 1 << (i % 8)
    body = struct.pack(">H", 3) + bytes(bitmap) + struct.pack(">I", 20 * len(order))
    body += b"".join(bytes.fromhex(values[str(i)]) for i in order)
    return hashlib.sha1(body).hexdigest()


def pcrs(spec):
    state = {}
    for i in list(spec["extends"]) + ["17", "18", "19"]:
        state[str(int(i))] = bytes(20)
    if spec.get("drtm") is not None:
        state["17"] = hashlib.sha1(bytes(20) + hashlib.sha1(spec["drtm"].encode()).digest()).digest()
    for i, digests in spec["extends"].items():
        for d in digests:
            state[str(int(i))] = hashlib.sha1(state[str(int(i))] + bytes.fromhex(d)).digest()
    out = {k: v.hex() for k, v in state.items()}
    return {"pcrs": out, "composite": composite(out)}


def decode_file(path):
    lines = open(path, "rb").read().split(b"\n")
    assert lines[-1] == b"", "file does not end in a newline"
    lines = lines[:-1]
    frame = [l.decode() for l in lines if l.startswith(b"-----") or l.startswith(b"Symmetric Key")]
    sections, current = {}, None
    for l in lines:
        if l.startswith(b"-----") or l.startswith(b"Symmetric Key"):
            if l in (b"-----TSS KEY-----", b"-----ENC KEY-----", b"-----ENC DAT-----"):
                current = l.decode()
                sections[current] = b""
            continue
        sections[current] += l
    longest = max(len(l) for l in lines if not l.startswith(b"-----"))
    key = base64.b64decode(sections["-----TSS KEY-----"], validate=True)
    sealed = base64.b64decode(sections["-----ENC KEY-----"], validate=True)
    data = base64.b64decode(sections["-----ENC DAT-----"], validate=True)
    # TPM_KEY: ver 4, keyUsage 2, keyFlags 4, authDataUsage 1, algorithmParms (algorithmID 4,
    # encScheme 2, sigScheme 2, parmSize 4, parms), PCRInfoSize 4, ...
    parm_size = struct.unpack(">I", key[19:23])[0]
    key_params = key[:23 + parm_size + 4]
    # TPM_STORED_DATA12: tag 2, et 2, sealInfoSize 4, TPM_PCR_INFO_LONG: tag 2, locality at
    # creation 1, at release 1, creation selection, release selection, digests at creation,
    # at release.
    tag, et, info_size = struct.unpack(">HHI", sealed[:8])
    info = sealed[8:8 + info_size]
    info_tag, loc_create, loc_release = struct.unpack(">HBB", info[:4])
    pos = 4
    n = struct.unpack(">H", info[pos:pos + 2])[0]; pos += 2 + n
    n = struct.unpack(">H", info[pos:pos + 2])[0]
    release_sel = info[pos:pos + 2 + n]; pos += 2 + n
    pos += 20
    digest_release = info[pos:pos + 20]
    return {"frame": frame, "longest": longest, "key_params": key_params.hex(),
            "stored_tag": tag, "info_tag": info_tag, "locality_release": loc_release,
            "release_selection": release_sel.hex(), "digest_release": digest_release.hex(),
            "data_length": len(data)}


if __name__ == "__main__":
    op, arg = sys.argv[1], sys.argv[2]
    if op == "pcrs":
        print(json.dumps(pcrs(json.loads(arg))))
    elif op == "composite":
        print(composite(json.loads(arg)))
    elif op == "file":
        print(json.dumps(decode_file(arg)))
    else:
        sys.exit("unknown operation " + op)
