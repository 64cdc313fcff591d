#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the DRTM event log of a TrenchBoot Secure Launch exactly as the loaders' code writes it,
and optionally runs the same launch on a software TPM 2.0 (swtpm), independently of aem-pcr
(python3 hashlib and raw TPM commands only).

    trenchboot-log.py --scenario amd-efi|amd-mb2|intel-mb2 --log OUT
        [--server SOCK --ctrl SOCK] [--header-banks sha256] [--extra-extend PCR]
        [--region SIZE] [--mem-image FILE --address ADDR] [--dmesg FILE --dmesg-style 2024|2026]
        [--print-pcrs]

No real TrenchBoot launch is run here: the inputs (SLB, Xen image, modules, command lines, the
Multiboot2 information block, the SLRT platform entry) are synthetic bytes; what follows the
sources is the layout of the log and which bytes each record's digests are computed from.
Sources (fetched mirrors, read 2026-12-03):

  secure-kernel-loader, branch slrt (e4f7e32), event_log.c
    - the header record: tpm12_event_t {pcr 0, EV_NO_ACTION, 20 zero bytes, size} then
      tpm20_spec_id_ev_t {"Spec ID Event03", class 0, 0, 2, 0, uintn 2, 2 algorithms
      (SHA-1 20, SHA-256 32), vendor_info_size 20, txt_event_log_pointer2_1_element
      {phys_addr, allocated size, first_record_offset 0, next_record_offset}}
      (tpm20_id_struct, event_log_init "Write log header")
    - next_record_offset starts at sizeof(tpm20_spec_id_ev_t) + sizeof(tpm12_event_t) = 89 and
      grows by each record (log_event_tpm20; Xen's create_log_event20 does the same)
    - every SKL record: {pcr, 0x502, count 2, SHA-1, SHA-256, strlen(event), event}
      (ev_log_hash_t, log_event_tpm20), whatever the header declares
    - "SKINIT" into PCR17: H(SLB[0 : _end_of_measured]) (event_log_init), the length being the
      second u16 of the SLB header (head.S ".word _end_of_measured")
  secure-kernel-loader main.c (slrt branch), skl_main: "DLME entry offset" = H(le32
      dl_info->dlme_entry), then "DLME" = H(dlme_base .. dlme_size), both PCR17 (lines 297-300)
  Xen (TrenchBoot fork) arch/x86/tpm.c create_log_event20 (aem-staging-14-10-24-rebase, and the
      2026 slaunch tpm code): a record has one digest per header bank, in header order; SHA-1 and
      SHA-256 hashed, any other bank TXT's OneDigest (01 00 .. 00), which is also what the TPM
      extends; tpm_extend_mbi / slaunch_measure_mbi: the Multiboot2 information block
      (mbi->total_size bytes) into PCR18 with no data
  Xen arch/x86/slaunch.c (2025 code, 3mdeb copyright 2022-2025): slaunch_measure_slrt measures
      the platform entry (slr_entry_amd_info with next, slrt_base, boot_params_base zeroed;
      slr_entry_intel_info with boot_params_base, txt_heap zeroed) into PCR18 with no data;
      slaunch_process_drtm_policy: policy entries from index 2 with their evt_info string (GRUB
      multiboot_mbi2.c: "Measured MB2 module" into PCR17 per module; txt.c: "Measured TXT OS-MLE
      data" into PCR18 on Intel), then on EFI "Xen's command line" (PCR18, strlen bytes) and per
      module "MB module string" (PCR18) and "MB module" (PCR17)
  Intel (SINIT): the header has no vendor info and SINIT's own records come first; they are the
      synthetic ones of simulate-drtm-boot.py (HASH_START = H(SINIT), BIOSAC, CPU S-CRTM, LCP
      control, capabilities, MLE hash, SINIT key, S-CRTM in PCR18).

The swtpm run: AMD's SKINIT is `swtpm_ioctl -h SLB` (_TPM_Hash_Start/Data/End at locality 4:
PCR17-22 reset, PCR17 extended with H(SLB) in every bank); Intel's GETSEC[SENTER] is `-h SINIT`;
every further record is a TPM2_PCR_Extend at locality 2 of exactly the digests it logs (the SKL
extends SHA-1 and SHA-256 one bank at a time, Xen the header's banks).
"""

import argparse
import functools
import hashlib
import importlib.util
import os
import struct
import subprocess

ALG = {"sha1": 0x0004, "sha256": 0x000B, "sha384": 0x000C, "sha512": 0x000D}
EV_NO_ACTION = 0x3
EV_SLAUNCH = 0x502

# Synthetic inputs.
SINIT = b"synthetic SINIT ACM for the aem-pcr tests" * 64
XEN = b"synthetic xen.efi image for the aem-pcr TrenchBoot tests" * 4096
MODULES = [  # (string as Xen sees it, bytes)
    (b"vmlinuz-6.6 placeholder root=/dev/mapper/qubes_dom0-root ro", b"synthetic dom0 kernel" * 8192),
    (b"initramfs-6.6.img", b"synthetic initramfs" * 16384),
]
XEN_CMDLINE = b"placeholder console=none dom0_mem=min:1024M dom0_mem=max:4096M ucode=scan"
DLME_ENTRY = 0x626794  # the entry offset of the real v0.5.3-rc1 launch (Vectors/logs/trenchboot)


def slb():
    """The SKL as GRUB loads it: u16 entry, u16 measured length, u16 info, u16 SLRT offset."""
    measured = 0x6000
    head = struct.pack("<HHHH", 0x100, measured, 0x80, 0x8000)
    body = (b"synthetic secure-kernel-loader code " * 2000)[: 0x10000 - len(head)]
    return head + body


def amd_info():
    """slr_entry_amd_info as Xen measures it: tag 5, size 56, next 0, type, len, slrt_size,
    slrt_base 0, boot_params_base 0, psp_version, reserved[3] (addresses zeroed by Xen)."""
    return struct.pack("<IIQIIQQQH6x", 5, 56, 0, 0xB, 0x38, 0x1000, 0, 0, 0)


def intel_info():
    """slr_entry_intel_info as Xen measures it: hdr, boot_params_base 0, txt_heap 0, MSR, MTRRs."""
    return struct.pack("<II", 4, 8 + 8 + 8 + 8 + 16 + 8 * 16 * 2) + bytes(16) + struct.pack("<QQQ", 0x850089, 6, 8) + bytes(16 * 16)


def mbi():
    """A Multiboot2 information block: u32 total_size, u32 reserved, tags (command lines,
    modules with addresses and sizes, memory map); end tag."""
    tags = b""
    for string, data in MODULES:
        s = string + b"\0"
        t = struct.pack("<IIII", 3, 16 + len(s), 0x1000000, 0x1000000 + len(data)) + s
        tags += t + bytes(-len(t) % 8)
    tags += struct.pack("<II", 8, 8)
    return struct.pack("<II", 8 + len(tags), 0) + tags


def H(bank, data):
    return hashlib.new(bank, data).digest()


def one_digest(bank):
    return b"\x01" + bytes(hashlib.new(bank).digest_size - 1)


def events(scenario, header_banks):
    """[(pcr, type, [(bank, digest)], data, who)] in log order; who is 'skl', 'xen' or 'sinit'."""
    ev = []

    def skl(pcr, data, text):
        ev.append((pcr, EV_SLAUNCH, [(b, H(b, data)) for b in ("sha1", "sha256")], text, "skl"))

    def xen(pcr, data, text):
        ds = [(b, H(b, data) if b in ("sha1", "sha256") else one_digest(b)) for b in header_banks]
        ev.append((pcr, EV_SLAUNCH, ds, text, "xen"))

    def sinit(pcr, type_, data, digest_of=None):
        ev.append((pcr, type_, [(b, H(b, data if digest_of is None else digest_of)) for b in header_banks],
                   data if digest_of is None else b"", "sinit"))

    if scenario.startswith("amd"):
        image = slb()
        length = struct.unpack_from("<H", image, 2)[0]
        skl(17, image[:length], b"SKINIT")
        skl(17, struct.pack("<I", DLME_ENTRY), b"DLME entry offset")
        skl(17, XEN, b"DLME")
        if scenario == "amd-mb2":
            xen(18, mbi(), b"")
        xen(18, amd_info(), b"")
        if scenario == "amd-efi":
            xen(18, XEN_CMDLINE, b"Xen's command line")
            for string, data in MODULES:
                xen(18, string, b"MB module string")
                xen(17, data, b"MB module")
        else:
            for _, data in MODULES:
                xen(17, data, b"Measured MB2 module")
    else:
        sinit(17, 0x402, None, digest_of=SINIT)
        sinit(17, 0x40A, bytes.fromhex("000000002408182007b000000002000000000000000000000400000000000000"))
        sinit(17, 0x40B, struct.pack("<I", 1))
        sinit(17, 0x40C, struct.pack("<I", 0))
        sinit(17, 0x40F, bytes.fromhex("01060000"))
        sinit(17, 0x404, None, digest_of=XEN)
        sinit(18, 0x410, None, digest_of=b"synthetic SINIT public key")
        sinit(18, 0x40B, struct.pack("<I", 1))
        xen(18, mbi(), b"")
        xen(18, intel_info(), b"")
        xen(18, b"synthetic OsMleData" * 10, b"Measured TXT OS-MLE data")
        for _, data in MODULES:
            xen(17, data, b"Measured MB2 module")
    return ev


def record(pcr, type_, digests, data):
    out = struct.pack("<III", pcr, type_, len(digests))
    for b, d in digests:
        out += struct.pack("<H", ALG[b]) + d
    return out + struct.pack("<I", len(data)) + data


def log_bytes(scenario, header_banks, address, region):
    amd = scenario.startswith("amd")
    spec = b"Spec ID Event03\x00" + struct.pack("<IBBBB", 0, 0, 2, 0, 2) + struct.pack("<I", len(header_banks))
    for b in header_banks:
        spec += struct.pack("<HH", ALG[b], hashlib.new(b).digest_size)
    body = b"".join(record(p, t, d, x) for p, t, d, x, _ in events(scenario, header_banks))
    if amd:
        # txt_event_log_pointer2_1_element in the vendor info; next_record_offset after the
        # last record, as log_event_tpm20 and create_log_event20 leave it.
        header_size = 32 + len(spec) + 1 + 20
        spec += bytes([20]) + struct.pack("<QIII", address, region, 0, header_size + len(body))
    else:
        spec += b"\x00"
    out = struct.pack("<II", 0, EV_NO_ACTION) + bytes(20) + struct.pack("<I", len(spec)) + spec + body
    assert len(out) <= region
    return out + bytes(region - len(out))


@functools.cache
def simulate_drtm_boot():
    """simulate-drtm-boot.py as a module (its name has hyphens)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "simulate-drtm-boot.py")
    spec = importlib.util.spec_from_file_location("simulate_drtm_boot", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pcr_extend(sock_path, pcr, digests):
    """TPM2_PCR_Extend on swtpm: simulate-drtm-boot.py's, the one raw-command client of the scripts."""
    simulate_drtm_boot().pcr_extend(sock_path, pcr, digests)


def replay(ev, bank, pcr):
    v = bytes(hashlib.new(bank).digest_size)
    for p, t, ds, _, _ in ev:
        d = dict(ds)
        if p == pcr and t != EV_NO_ACTION and bank in d:
            v = H(bank, v + d[bank])
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", required=True, choices=["amd-efi", "amd-mb2", "intel-mb2"])
    ap.add_argument("--log", required=True)
    ap.add_argument("--server")
    ap.add_argument("--ctrl")
    ap.add_argument("--header-banks", default="sha1,sha256",
                    help="banks the header declares (SKL: always sha1,sha256; a patched SKL or SINIT: the TPM's)")
    ap.add_argument("--extra-extend", type=int, help="one more extend of this PCR that the log does not record")
    ap.add_argument("--address", type=lambda s: int(s, 0), default=0x7E9F5000)
    ap.add_argument("--region", type=lambda s: int(s, 0), default=0x8000)
    ap.add_argument("--mem-image", help="also write a file laid out like physical memory with the log at --address")
    ap.add_argument("--dmesg", help="also write Xen's console text naming the range")
    ap.add_argument("--dmesg-style", choices=["2024", "2026"], default="2024")
    ap.add_argument("--print-pcrs", action="store_true")
    a = ap.parse_args()
    banks = a.header_banks.split(",")
    ev = events(a.scenario, banks)
    data = log_bytes(a.scenario, banks, a.address, a.region)
    with open(a.log, "wb") as f:
        f.write(data)
    if a.mem_image:
        with open(a.mem_image, "wb") as f:
            f.seek(a.address)
            f.write(data)
            f.write(b"\xa5" * 4096)  # what follows the range is not the log's
    if a.dmesg:
        start, end = a.address, a.address + a.region
        rng = "(%#x - %#x)" % (start, end) if a.dmesg_style == "2024" else "[%#x, %#x)" % (start, end)
        with open(a.dmesg, "w") as f:
            f.write("(XEN) Xen version 4.19.1 (built for the aem-pcr tests)\n")
            if a.scenario.startswith("amd"):
                f.write("(XEN) SLAUNCH: reserving SLB (%#x - %#x)\n" % (0x1000000, 0x1010000))
            f.write("(XEN) SLAUNCH: reserving event log %s\n" % rng)
            f.write("(XEN) Brought up 2 CPUs\n")
    if a.server:
        image = slb()
        launch = image[: struct.unpack_from("<H", image, 2)[0]] if a.scenario.startswith("amd") else SINIT
        subprocess.run(["swtpm_ioctl", "--unix", a.ctrl, "-h", "-"], input=launch, check=True)
        subprocess.run(["swtpm_ioctl", "--unix", a.ctrl, "-l", "2"], check=True, stdout=subprocess.DEVNULL)
        for pcr, _, digests, _, who in ev[1:]:
            if who == "skl":
                for d in digests:  # tpm_extend_pcr, one bank at a time
                    pcr_extend(a.server, pcr, [d])
            else:
                pcr_extend(a.server, pcr, digests)
        if a.extra_extend is not None:
            pcr_extend(a.server, a.extra_extend, [(b, H(b, b"not in the log")) for b in ("sha1", "sha256")])
        subprocess.run(["swtpm_ioctl", "--unix", a.ctrl, "-l", "0"], check=True, stdout=subprocess.DEVNULL)
    if a.print_pcrs:
        for b in ("sha1", "sha256"):
            print("  %s:" % b)
            for pcr in (17, 18):
                print("    %d: 0x%s" % (pcr, replay(ev, b, pcr).hex().upper()))


if __name__ == "__main__":
    main()
