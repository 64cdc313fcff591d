#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write the synthetic boot files of Vectors/example/boot/ (deterministic).

    python3 Vectors/make_example.py [--no-tools]

Every byte comes from fixed seeds (a SHA-256 counter stream, not `random`) and
gzip is written with mtime=0, so a rerun with the same zlib gives the same files.
(Another zlib build, e.g. zlib-ng, may compress differently: the committed files
are the reference, Vectors/expected.py recomputes everything from them.)

The files are small stand-ins with the structure the predictor relies on:

  tboot.gz            gzip of an ELF32 (ET_EXEC, EM_386) with one PT_LOAD holding
                      an MLE header (tboot include/mle.h); accepted by Debian's
                      /usr/sbin/lcp2_mlehash.  Traps: a decoy MLE UUID at an
                      offset that is not 16-byte aligned (a scanner must step by 16),
                      mle_end_off beyond p_filesz (the tail of the measured range
                      is the zero fill up to p_memsz), and non-loaded bytes after
                      the segment in the file (must not be read as segment data).
  xen-*.gz            gzip of a pseudo ELF64 (GRUB gunzips it: hash the ELF)
  vmlinuz-*           raw bzImage-like bytes (no gzip magic: hashed as is)
  initramfs-*.img     gzip of a cpio "newc" archive (gunzipped unless --nounzip)
  *_SINIT_*.BIN       8 KiB ACMs that tboot's is_sinit_acmod() accepts (removed
                      from the module list, never measured)
  policy-custom.pol   a tboot Verified Launch policy made by Debian's real
                      /usr/sbin/tb_polgen (kept as committed if tb_polgen is absent)

With tb_polgen/lcp2_mlehash present (Debian package `tboot`), the script also
cross-checks: lcp2_mlehash's MLE digests against expected.py's own MLE hash,
and tb_polgen's module-0 image hash against expected.py's module measurement.
"""

import gzip
import hashlib
import os
import shutil
import struct
import subprocess
import sys

sys.dont_write_bytecode = True   # it imports expected.py; leave no __pycache__

HERE = os.path.dirname(os.path.abspath(__file__))
BOOT = os.path.join(HERE, "example", "boot")

MLE_UUID = bytes.fromhex("5aac82906f47a7740f5c55a2cb51b642")
ACM_UUID_V3 = bytes.fromhex("aa3ac07fa746db182eac698f8d417f5a")

# The Xen command line of the AEM entries as real GRUB passes it (grub-emu output
# Vectors/example/grub-emu/aem-top.pc.tsv, arguments after the file name joined).
XEN_CMDLINE_PC = ("placeholder console=none dom0_mem=min:1024M dom0_mem=max:4096M "
                  "ucode=scan smt=off gnttab_max_frames=2048 "
                  "gnttab_max_maptrack_frames=4096")


def stream(seed, n):
    """n deterministic pseudo-random bytes: SHA-256(seed || counter) blocks."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed.encode() + struct.pack("<Q", i)).digest()
        i += 1
    return bytes(out[:n])


WORDS = (b"xen hypervisor dom0 event channel grant table page frame mfn pfn "
         b"vcpu scheduler credit2 iommu vt-d acpi madt dmar hvm pv shadow paging ")


def mixed(seed, n):
    """n bytes in 256-byte blocks: ~1/4 random, the rest text or zero runs,
    so gzip has something to compress and something it cannot."""
    sel = stream(seed + "/sel", n // 256 + 1)
    rnd = stream(seed + "/rnd", n)
    out = bytearray()
    for b in range(n // 256 + 1):
        k = sel[b] % 8
        off = b * 256
        if k < 2:
            blk = rnd[off:off + 256]
        elif k < 6:
            s = sel[b] % len(WORDS)
            blk = (WORDS[s:] + WORDS * 4)[:256]
        elif k < 7:
            blk = bytes(256)
        else:
            blk = bytes((off // 256 + j) & 0xFF for j in range(256))
        out += blk
    return bytes(out[:n])


def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


# --- tboot.gz -------------------------------------------------------------

SEG_OFFSET = 0x1000       # p_offset
SEG_PADDR = 0x800000      # p_paddr / p_vaddr
SEG_FILESZ = 0xD800       # p_filesz (mle_end_off 0xE000 lies beyond it)
SEG_MEMSZ = 0x12000       # p_memsz
MLE_HDR_OFF = 0x1340      # 16-byte aligned, offset into the segment
DECOY_OFF = 0x0808        # NOT 16-byte aligned: lcp2_mlehash never looks here
TRAILER = 0x800           # bytes after the segment in the file, not loaded
MLE = dict(length=0x34, version=0x20001, entry_point=0x1400, first_valid_page=0,
           mle_start_off=0x400, mle_end_off=0xE000, capabilities=0x627,
           cmdline_start_off=0x7E00, cmdline_end_off=0x7FFF)


def mle_header(f):
    return MLE_UUID + struct.pack(
        "<9I", f["length"], f["version"], f["entry_point"], f["first_valid_page"],
        f["mle_start_off"], f["mle_end_off"], f["capabilities"],
        f["cmdline_start_off"], f["cmdline_end_off"])


def make_tboot_elf():
    seg = bytearray(mixed("tboot/segment", SEG_FILESZ))
    # a decoy header at an unaligned offset, with offsets that would hash
    # another range (a byte-wise scanner finds it first)
    decoy = dict(MLE, mle_start_off=0x0, mle_end_off=0x2000,
                 cmdline_start_off=0x100, cmdline_end_off=0x200)
    seg[DECOY_OFF:DECOY_OFF + 0x34] = mle_header(decoy)
    seg[MLE_HDR_OFF:MLE_HDR_OFF + 0x34] = mle_header(MLE)
    # tboot's command-line buffer: zero in the image (lcp2_mlehash and the
    # loader zero [cmdline_start_off, cmdline_end_off) and copy the line there)
    seg[0x7E00:0x8000] = bytes(0x200)
    assert seg.count(MLE_UUID) == 2

    ehdr = (b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)      # ELFCLASS32, LSB, EV_CURRENT
            + struct.pack("<HHIIIIIHHHHHH",
                          2,                   # e_type ET_EXEC
                          3,                   # e_machine EM_386
                          1,                   # e_version EV_CURRENT
                          SEG_PADDR + 0x1400,  # e_entry
                          52,                  # e_phoff
                          0,                   # e_shoff
                          0,                   # e_flags
                          52,                  # e_ehsize
                          32,                  # e_phentsize
                          1,                   # e_phnum
                          40, 0, 0))           # e_shentsize, e_shnum, e_shstrndx
    phdr = struct.pack("<8I",
                       1,              # p_type PT_LOAD
                       SEG_OFFSET,     # p_offset
                       SEG_PADDR,      # p_vaddr
                       SEG_PADDR,      # p_paddr
                       SEG_FILESZ,     # p_filesz
                       SEG_MEMSZ,      # p_memsz
                       7,              # p_flags RWX
                       0x1000)         # p_align
    head = ehdr + phdr
    head += bytes(SEG_OFFSET - len(head))
    trailer = stream("tboot/trailer", TRAILER)
    return head + bytes(seg) + trailer


# --- xen, vmlinuz, initramfs ---------------------------------------------

def make_xen(version):
    body = bytearray(mixed("xen/" + version, 60 * 1024))
    ehdr = (b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
            + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x100000, 64, 0, 0,
                          64, 56, 1, 64, 0, 0))
    body[0:len(ehdr)] = ehdr
    body[0x100:0x100 + 32] = ("Xen version %s (synthetic)\0" % version).encode().ljust(32, b"\0")
    return bytes(body)


def make_vmlinuz(kver):
    body = bytearray(mixed("vmlinuz/" + kver, 40 * 1024))
    body[0:2] = b"MZ"                  # never 1f 8b: GRUB passes it through
    body[0x1F1] = 0x1F                 # setup_sects
    body[0x1FE:0x200] = b"\x55\xaa"
    body[0x202:0x206] = b"HdrS"
    body[0x206:0x208] = struct.pack("<H", 0x020F)
    body[0x400:0x400 + 40] = ("%s (synthetic)" % kver).encode().ljust(40, b"\0")
    assert body[:2] != b"\x1f\x8b"
    return bytes(body)


def cpio_newc(entries):
    out = bytearray()
    ino = 1
    for name, data, mode in entries + [("TRAILER!!!", b"", 0)]:
        nb = name.encode() + b"\0"
        hdr = b"070701" + b"".join(b"%08X" % v for v in (
            ino if name != "TRAILER!!!" else 0, mode, 0, 0, 1, 0, len(data),
            0, 0, 0, 0, len(nb), 0))
        out += hdr + nb
        out += bytes((-len(out)) % 4)
        out += data
        out += bytes((-len(out)) % 4)
        ino += 1
    return bytes(out)


def make_initramfs(kver):
    entries = [
        ("init", b"#!/bin/sh\n# synthetic initramfs for %s\nexec /sbin/init\n" % kver.encode(), 0o100755),
        ("etc/aem.conf", b"SEAL=\"--pcr 13 --pcr 17 --pcr 18 --pcr 19\"\n", 0o100644),
        ("usr/lib/modules/%s/modules.dep" % kver, mixed("initramfs/dep/" + kver, 20 * 1024), 0o100644),
        ("usr/bin/anti-evil-maid-unseal", mixed("initramfs/bin/" + kver, 38 * 1024), 0o100755),
    ]
    return cpio_newc(entries)


# --- SINIT ACMs -------------------------------------------------------------

ACM_SIZE = 8192
HEADER_LEN = 0xA1      # dwords (header + 2048-bit key + exponent + signature)
SCRATCH_SIZE = 0x8F    # dwords
INFO_OFF = (HEADER_LEN + SCRATCH_SIZE) * 4      # 0x4C0


def make_sinit(name, date, info_version):
    acm = bytearray(stream("sinit/" + name, ACM_SIZE))
    hdr = struct.pack("<HHIIHHIII", 2, 0, HEADER_LEN, 0x00000000, 0, 0,
                      0x8086, date, ACM_SIZE // 4)
    acm[0:len(hdr)] = hdr                                   # up to offset 28
    acm[28:56] = struct.pack("<HHIIIIII", 0, 0, 0, 0x1000, 0x80, 0x2000, 0x8, 0x3000)
    acm[56:120] = bytes(64)                                 # reserved2
    acm[120:128] = struct.pack("<II", 0x40, SCRATCH_SIZE)   # key_size, scratch_size
    acm[HEADER_LEN * 4:INFO_OFF] = bytes(INFO_OFF - HEADER_LEN * 4)   # scratch
    chipset_list_off = 0x500
    proc_list_off = 0x520
    tpm_list_off = 0x550
    info = ACM_UUID_V3 + struct.pack("<BBHIIII", 1, info_version, 0x30,
                                     chipset_list_off, 6, 0x20001, 0x0000022E)
    info += struct.pack("<B3s", 0x10, b"\0\0\0")
    info += struct.pack("<I", proc_list_off if info_version >= 4 else 0)
    info += struct.pack("<I", tpm_list_off if info_version >= 5 else 0)
    acm[INFO_OFF:INFO_OFF + len(info)] = info
    acm[chipset_list_off:chipset_list_off + 20] = struct.pack(
        "<IIHHHHI", 1, 0, 0x8086, 0xB002, 0x1, 0, 0)
    acm[proc_list_off:proc_list_off + 28] = struct.pack(
        "<IIIQQ", 1, 0x000306A0, 0x0FFF3FF0, 0, 0)
    acm[tpm_list_off:tpm_list_off + 12] = struct.pack("<IIHH", 0x3, 2, 0x0004, 0x000B)
    assert len(acm) == ACM_SIZE
    return bytes(acm)


# --- policy ------------------------------------------------------------------

def make_policy(path):
    tb_polgen = shutil.which("tb_polgen") or (
        "/usr/sbin/tb_polgen" if os.access("/usr/sbin/tb_polgen", os.X_OK) else None)
    if tb_polgen is None:
        print("tb_polgen not found: keeping the committed %s" % path)
        return False
    tmp = path + ".tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    xen = os.path.join(BOOT, "xen-4.17.5.gz")
    for args in (["--create", "--type", "nonfatal", "--alg", "sha1"],
                 ["--add", "--num", "0", "--pcr", "18", "--hash", "image",
                  "--cmdline", XEN_CMDLINE_PC, "--image", xen],
                 ["--add", "--num", "any", "--pcr", "19", "--hash", "any"]):
        subprocess.run([tb_polgen] + args + [tmp], check=True,
                       stdout=subprocess.DEVNULL)
    os.replace(tmp, path)
    return True


# --- cross-checks with the real tboot tools ---------------------------------

def check_lcp2_mlehash(path):
    tool = shutil.which("lcp2_mlehash") or (
        "/usr/sbin/lcp2_mlehash" if os.access("/usr/sbin/lcp2_mlehash", os.X_OK) else None)
    if tool is None:
        print("lcp2_mlehash not found: MLE cross-check skipped")
        return
    sys.path.insert(0, HERE)
    import expected
    for cmdline in expected.MLE_CMDLINES:
        for alg in expected.BANKS:
            out = subprocess.run([tool, "--create", "--alg", alg, "--cmdline", cmdline, path],
                                 check=True, capture_output=True, text=True).stdout
            got = "".join(c for c in out if c in "0123456789abcdefABCDEF").lower()
            want = expected.mle_digest(open(path, "rb").read(), cmdline, alg)
            if got != want:
                sys.exit("lcp2_mlehash disagrees (%s, %r): %s != %s" % (alg, cmdline, got, want))
    print("lcp2_mlehash agrees with expected.py on %d MLE digests"
          % (len(expected.MLE_CMDLINES) * len(expected.BANKS)))


def check_policy(path):
    sys.path.insert(0, HERE)
    import expected
    pol = expected.parse_policy(open(path, "rb").read())
    e0 = pol["entries"][0]
    xen = open(os.path.join(BOOT, "xen-4.17.5.gz"), "rb").read()
    m0 = expected.module_measurement(xen, XEN_CMDLINE_PC, False, "sha1")
    if e0["hashes"] != [m0]:
        sys.exit("tb_polgen's image hash %s != module measurement %s" % (e0["hashes"], m0))
    print("tb_polgen's module-0 hash agrees with expected.py: %s" % m0)


def main():
    os.makedirs(BOOT, exist_ok=True)
    files = {
        "tboot.gz": gz(make_tboot_elf()),
        "xen-4.17.5.gz": gz(make_xen("4.17.5")),
        "xen-4.17.4.gz": gz(make_xen("4.17.4")),
        "vmlinuz-6.6.63-1.qubes.fc37.x86_64": make_vmlinuz("6.6.63-1.qubes.fc37.x86_64"),
        "vmlinuz-6.6.48-1.qubes.fc37.x86_64": make_vmlinuz("6.6.48-1.qubes.fc37.x86_64"),
        "initramfs-6.6.63-1.qubes.fc37.x86_64.img": gz(make_initramfs("6.6.63-1.qubes.fc37.x86_64")),
        "initramfs-6.6.48-1.qubes.fc37.x86_64.img": gz(make_initramfs("6.6.48-1.qubes.fc37.x86_64")),
        "2nd_gen_i5_i7_SINIT_51.BIN": make_sinit("2nd_gen_i5_i7_SINIT_51", 0x20110325, 3),
        "3rd_gen_i5_i7_SINIT_67.BIN": make_sinit("3rd_gen_i5_i7_SINIT_67", 0x20130108, 5),
    }
    for name, data in files.items():
        with open(os.path.join(BOOT, name), "wb") as f:
            f.write(data)
    policy = os.path.join(BOOT, "policy-custom.pol")
    make_policy(policy)
    total = sum(os.path.getsize(os.path.join(BOOT, n)) for n in os.listdir(BOOT))
    print("wrote %d files, %d bytes in %s" % (len(os.listdir(BOOT)), total, BOOT))
    if "--no-tools" not in sys.argv:
        check_lcp2_mlehash(os.path.join(BOOT, "tboot.gz"))
        if os.path.exists(policy):
            check_policy(policy)


if __name__ == "__main__":
    main()
