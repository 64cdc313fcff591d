#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Independent reference for TPM 1.2 legacy PCR18/PCR19 (tboot policy.c: hash_module, _def_policy), stdlib only.

usage: reference_legacy.py MLE_SHA1_HEX FILE::CMDLINE [FILE::CMDLINE ...]
  MLE_SHA1_HEX  SINIT's MLE hash of tboot (from tboot's own lcp2_mlehash --alg sha1)
  FILE::CMDLINE each module in boot order (SINIT ACMs already left out); a FILE prefixed with
                'nounzip:' is hashed as is, otherwise gunzipped when it starts with 1f 8b 08.
Prints PCR18 and PCR19 (default policy _def_policy_12: module 0 -> 18, others -> 19) as
'18 <hex>' and '19 <hex>'.
"""
import gzip, hashlib, sys

def sha1(b):
    return hashlib.sha1(b).digest()

def image(path):
    nounzip = path.startswith("nounzip:")
    if nounzip:
        path = path[len("nounzip:"):]
    data = open(path, "rb").read()
    if not nounzip and data[:3] == b"\x1f\x8b\x08":
        data = gzip.decompress(data)
    return data

def main(argv):
    mle = bytes.fromhex(argv[1])
    pcr18 = sha1(bytes(20) + mle)
    pcr19 = bytes(20)
    for i, spec in enumerate(argv[2:]):
        path, cmdline = spec.split("::", 1)
        m = sha1(sha1(cmdline.encode()) + sha1(image(path)))
        if i == 0:
            pcr18 = sha1(pcr18 + m)
        else:
            pcr19 = sha1(pcr19 + m)
    print("18", pcr18.hex())
    print("19", pcr19.hex())

if __name__ == "__main__":
    main(sys.argv)
