#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Writes a gzip-compressed ELF32 shaped like tboot whose MLE header straddles the first 1 MiB of
# the image (the tool loads tboot in 1 MiB steps): a regression input for the MLE reader.
import struct, gzip, sys
# ELF32 with one PT_LOAD of 3 MiB at file offset 0x1000
seg = bytearray(3 << 20)
o = (1 << 20) - 0x1000 - 32  # UUID in the first MiB of the file, the fields after it not
seg[o:o+16] = bytes.fromhex("5aac82906f47a7740f5c55a2cb51b642")
seg[o+16:o+52] = struct.pack("<9I", 0x34, 0x20001, 0, 0, 0x400, 0x2000, 0, 0x1000, 0x1100)
eh = b"\x7fELF" + bytes([1,1,1]) + bytes(9) + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, 0, 52, 0, 0, 52, 32, 1, 0, 0, 0)
ph = struct.pack("<8I", 1, 0x1000, 0x800000, 0x800000, len(seg), len(seg), 7, 0x1000)
img = eh + ph
img += bytes(0x1000 - len(img)) + seg
open(sys.argv[1], "wb").write(gzip.compress(img, mtime=0))
