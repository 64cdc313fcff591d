#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Independent reference values for the aem-pcr tests -> Vectors/expected.json.

    python3 Vectors/expected.py            # (re)write Vectors/expected.json
    python3 Vectors/expected.py --check    # exit 1 if the committed JSON differs

Python standard library only.  Every value is computed here from the files in
Vectors/example/ with the rules as read from tboot's source (policy.c, acmod.c, lcptools-v2/mlehash.c) and GRUB's
grub-core/lib/cmdline.c -- never by running the Swift tool.  The command lines
are those real GRUB produced (grub-emu output in Vectors/example/grub-emu/*.tsv).
Cross-checks with real tools: make_example.py compares mle_digest() with Debian's
lcp2_mlehash and module_measurement() with the hash tb_polgen wrote into
policy-custom.pol; the policy-event function reproduces the three digests that
occur in real tboot logs (asserted below).
"""

import gzip
import hashlib
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)                      # repository root
EXAMPLE = os.path.join(HERE, "example")
BOOT = os.path.join(EXAMPLE, "boot")
GRUB_EMU = os.path.join(EXAMPLE, "grub-emu")
CASES = os.path.join(HERE, "grub", "cases.tsv")
OUT = os.path.join(HERE, "expected.json")

BANKS = ["sha1", "sha256", "sha384", "sha512"]
DIGEST_LEN = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}
MLE_CMDLINES = ["", "logging=serial,memory", "placeholder logging=memory,serial"]

MLE_UUID = bytes.fromhex("5aac82906f47a7740f5c55a2cb51b642")
ACM_UUID_V3 = bytes.fromhex("aa3ac07fa746db182eac698f8d417f5a")

# tboot policy.c _def_policy / _def_policy_da as packed bytes (tb_policy.h's layout)
DEF_POLICY_TPM12 = bytes.fromhex(
    "02000401000000000000000300ff00000000000081130000000000008316001000004000")
DEF_POLICY_DA = bytes.fromhex(
    "02000b01000000000000000300ff00000000000081110000000000008316001000004000")
REF_E_TPM12 = "c3438497fda827be3b321c5309a204f0c9e53943"
REF_E_DA_SHA256 = "71be5852a14eabefebf0df0e1acc5da291883b6d4c5ab20914ed987c1daf3f91"
REF_E_DA_SHA1_BANK = "0afc07618e3739481f4c2abaf703ca4e35507e6e"

TB_POL_MOD_NUM_ANY = 129
TB_POL_PCR_NONE = 255
# tb_policy.h hash_alg values (TPM 2.0 alg ids; 0 = legacy SHA-1 of old tb_polgen)
POLICY_HALG = {0x00: "sha1", 0x04: "sha1", 0x0B: "sha256", 0x0C: "sha384", 0x0D: "sha512"}


def rel(path):
    return os.path.relpath(path, ROOT).replace(os.sep, "/")


def H(bank, data):
    return hashlib.new(bank, data).digest()


def extend(bank, pcr, digest):
    assert len(pcr) == len(digest) == DIGEST_LEN[bank]
    return H(bank, pcr + digest)


# --- GRUB ----------------------------------------------------------------------

def _is_hex(c):
    return c in "0123456789abcdefABCDEF"


def grub_join(args):
    """grub_create_loader_cmdline (GRUB >= 2.04) with Fedora's patch
    "Pass \\x[[:hex:]][[:hex:]] straight through unmolested": each argument
    gets a backslash before \\ ' and " (a \\xHH sequence is copied as is),
    is wrapped in double quotes if it contains a space; one space between."""
    out = []
    for a in args:
        s = []
        i = 0
        while i < len(a):
            if a[i] == "\\" and a[i + 1:i + 2] == "x" and len(a) >= i + 4 \
                    and _is_hex(a[i + 2]) and _is_hex(a[i + 3]):
                s.append(a[i:i + 4])
                i += 4
                continue
            if a[i] in "\\'\"":
                s.append("\\")
            s.append(a[i])
            i += 1
        s = "".join(s)
        if " " in a:
            s = '"' + s + '"'
        out.append(s)
    return " ".join(out)


def read_tsv(path):
    """grub-emu output: one line per loader command, command<TAB>args...
    (options such as --nounzip and the file name included)."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            fields = line.split("\t")
            cmd, rest = fields[0], fields[1:]
            nounzip = False
            while rest and rest[0].startswith("--"):
                if rest[0] == "--nounzip":
                    nounzip = True
                rest = rest[1:]
            lines.append({"command": cmd, "file": rest[0], "args": rest[1:],
                          "cmdline": grub_join(rest[1:]), "nounzip": nounzip})
    return lines


def grub_image(data, nounzip):
    """The module bytes as GRUB's module/module2 put them in memory."""
    if not nounzip and data[:3] == b"\x1f\x8b\x08":
        return gzip.decompress(data)
    return data


# --- tboot ---------------------------------------------------------------------

def module_measurement(file_bytes, cmdline, nounzip, bank):
    """policy.c hash_module: H(H(cmdline) || H(image)), hex."""
    img = grub_image(file_bytes, nounzip)
    return H(bank, H(bank, cmdline.encode("utf-8")) + H(bank, img)).hex()


def is_sinit_acmod(data):
    """txt/acmod.c is_acmod() + chipset_acm_type == SINIT (exact size only)."""
    if len(data) < 0x280:
        return False
    module_type, = struct.unpack_from("<H", data, 0)
    header_len, = struct.unpack_from("<I", data, 4)
    vendor, = struct.unpack_from("<I", data, 16)
    size, = struct.unpack_from("<I", data, 24)
    scratch, = struct.unpack_from("<I", data, 124)
    if size * 4 != len(data) or module_type != 2 or vendor != 0x8086:
        return False
    off = (header_len + scratch) * 4
    if off + 18 > len(data):
        return False
    return (data[off:off + 16] == ACM_UUID_V3 and data[off + 16] == 1
            and data[off + 17] >= 3)


def mle_digest(tboot_file_bytes, cmdline, bank):
    """SPEC section 4 / lcptools-v2 mlehash.c: gunzip, expand the PT_LOADs
    (file bytes then zeros to p_memsz), find the MLE header by UUID in 16-byte
    steps, zero [cmdline_start, cmdline_end) and strncpy the command line there
    (at most end-start-1 bytes), hash [mle_start_off, mle_end_off).
    Segments are placed at p_paddr - min(p_paddr); for one segment (our tboot)
    that is also lcp2_mlehash's back-to-back layout."""
    elf = tboot_file_bytes
    if elf[:2] == b"\x1f\x8b":
        elf = gzip.decompress(elf)
    assert elf[:4] == b"\x7fELF" and elf[4] == 1 and elf[5] == 1
    e_type, e_machine, e_version = struct.unpack_from("<HHI", elf, 16)
    assert (e_type, e_machine, e_version) == (2, 3, 1)
    e_phoff, = struct.unpack_from("<I", elf, 28)
    e_phentsize, e_phnum = struct.unpack_from("<HH", elf, 42)
    assert e_phentsize >= 32
    loads = []
    for i in range(e_phnum):
        p = struct.unpack_from("<8I", elf, e_phoff + i * e_phentsize)
        if p[0] == 1:
            loads.append(p)
    base = min(p[3] for p in loads)
    end = max(p[3] + p[5] for p in loads)
    img = bytearray(end - base)
    for p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, _, _ in loads:
        assert p_filesz <= p_memsz and p_offset + p_filesz <= len(elf)
        img[p_paddr - base:p_paddr - base + p_filesz] = elf[p_offset:p_offset + p_filesz]
    hdr = None
    for off in range(0, len(img) - 16 + 1, 16):
        if img[off:off + 16] == MLE_UUID:
            hdr = off
            break
    assert hdr is not None, "no MLE header"
    (length, version, entry, fvp, mle_start, mle_end, caps,
     cl_start, cl_end) = struct.unpack_from("<9I", img, hdr + 16)
    if cl_end > cl_start:
        img[cl_start:cl_end] = bytes(cl_end - cl_start)
        c = cmdline.encode("utf-8")[:cl_end - cl_start - 1]
        img[cl_start:cl_start + len(c)] = c
    assert mle_start < mle_end <= len(img)
    return H(bank, bytes(img[mle_start:mle_end])).hex()


def parse_policy(data):
    """tb_policy.h, packed little-endian; returns fields and its exact size."""
    version, ptype, halg, ctl, _res, n = struct.unpack_from("<BBBIIB", data, 0)
    assert version == 2, "tb_policy version %d" % version
    dlen = DIGEST_LEN[POLICY_HALG[halg]]
    off = 12
    entries = []
    for _ in range(n):
        mod, pcr, htype, nv, nh = struct.unpack_from("<BBBIB", data, off)
        off += 8
        hashes = [data[off + k * dlen:off + (k + 1) * dlen].hex() for k in range(nh)]
        off += nh * dlen
        entries.append({"mod_num": mod, "pcr": pcr, "hash_type": htype,
                        "nv_index": nv, "hashes": hashes})
    return {"policy_type": ptype, "hash_alg": halg, "policy_control": ctl,
            "entries": entries, "size": off}


def policy_event(policy_bytes, cur, bank):
    """policy.c verify_g_policy: H_bank(LE32(policy_control) || H_cur(policy)),
    H_cur(policy) replaced by zeros if bit 0 (EXTEND_PCR17) is clear.  A policy
    read from NV with hash_alg 0 is hashed with hash_alg set to 4 (set_policy)."""
    pol = parse_policy(policy_bytes)
    p = bytearray(policy_bytes[:pol["size"]])
    if p[2] == 0:
        p[2] = 4
    ctl = pol["policy_control"]
    inner = H(cur, bytes(p)) if ctl & 1 else bytes(DIGEST_LEN[cur])
    return H(bank, struct.pack("<I", ctl) + inner).hex()


def find_policy_entry(pol, i):
    for e in pol["entries"]:
        if e["mod_num"] == i or e["mod_num"] == TB_POL_MOD_NUM_ANY:
            return e
    return None


def tboot_events(policy_bytes, modules, tpm, banks, extpol=None, da=None):
    """The 0x501 events tboot extends, in order (policy.c verify_all_modules).
    modules: [(file_bytes, cmdline, nounzip)] after SINIT removal.
    TPM 1.2: cur = SHA-1, one bank; TPM 2.0 extpol=embedded: cur = SHA-256 for
    the policy's inner hash, tboot hashes every bank itself."""
    if tpm == "1.2":
        cur, banks = "sha1", ["sha1"]
        da = bool(da)
    else:
        assert extpol == "embedded"
        cur = "sha256"
        da = True
    pol = parse_policy(policy_bytes)
    events = []

    def add(pcr, digests):
        for b in banks:
            events.append({"pcr": pcr, "bank": b, "digest": digests[b]})

    e = {b: policy_event(policy_bytes, cur, b) for b in banks}
    add(17, e)
    if da:
        add(18, e)
    meas = [{b: module_measurement(f, c, nz, b) for b in banks} for f, c, nz in modules]
    add(17 if da else 18, meas[0])               # module 0 always
    for i in range(len(modules)):
        pe = find_policy_entry(pol, i)
        assert pe is not None, "module %d not in policy" % i
        if pe["pcr"] != TB_POL_PCR_NONE:
            add(pe["pcr"], meas[i])
    return events


def replay(events, bank, pcr, initial=None):
    v = initial if initial is not None else bytes(DIGEST_LEN[bank])
    for ev in events:
        if ev["pcr"] == pcr and ev["bank"] == bank:
            v = extend(bank, v, bytes.fromhex(ev["digest"]))
    return v.hex()


# --- the vectors -------------------------------------------------------------

def self_test():
    assert policy_event(DEF_POLICY_TPM12, "sha1", "sha1") == REF_E_TPM12
    assert policy_event(DEF_POLICY_DA, "sha256", "sha256") == REF_E_DA_SHA256
    assert policy_event(DEF_POLICY_DA, "sha256", "sha1") == REF_E_DA_SHA1_BANK
    assert grub_join(["placeholder", "a b", "x\"y", "q\\x41", "it's", "\\xZZ", ""]) \
        == 'placeholder "a b" x\\"y q\\x41 it\\\'s \\\\xZZ '


def boot_files():
    return sorted(os.listdir(BOOT))


def load(name):
    with open(os.path.join(BOOT, name), "rb") as f:
        return f.read()


def module_vectors():
    tsvs = sorted(n for n in os.listdir(GRUB_EMU) if n.endswith(".tsv"))
    seen = set()
    for t in tsvs:
        for line in read_tsv(os.path.join(GRUB_EMU, t)):
            if line["command"] in ("module", "module2"):
                seen.add((line["file"].lstrip("/"), line["cmdline"], line["nounzip"]))
    for name in boot_files():
        if name == "tboot.gz" or name.endswith(".pol") or is_sinit_acmod(load(name)):
            continue
        seen.add((name, "", False))
    xen_pc = [l for l in read_tsv(os.path.join(GRUB_EMU, "aem-top.pc.tsv"))
              if l["file"] == "/xen-4.17.5.gz"][0]
    seen.add(("xen-4.17.5.gz", xen_pc["cmdline"], True))        # --nounzip Xen
    out = []
    for name, cmdline, nounzip in sorted(seen):
        data = load(name)
        if is_sinit_acmod(data):
            continue
        img = grub_image(data, nounzip)
        out.append({
            "file": rel(os.path.join(BOOT, name)),
            "cmdline": cmdline,
            "nounzip": nounzip,
            "image": {b: H(b, img).hex() for b in BANKS},
            "measurement": {b: module_measurement(data, cmdline, nounzip, b) for b in BANKS},
        })
    return out


def mle_vectors():
    data = load("tboot.gz")
    return [{"file": rel(os.path.join(BOOT, "tboot.gz")), "cmdline": c,
             "digests": {b: mle_digest(data, c, b) for b in BANKS}}
            for c in MLE_CMDLINES]


def policy_vectors():
    out = []

    def add(source, pol, cur, banks):
        for b in banks:
            out.append({"source": source, "policy_hex": pol.hex(), "current": cur,
                        "bank": b, "digest": policy_event(pol, cur, b)})

    add("tpm12-default", DEF_POLICY_TPM12, "sha1", ["sha1"])
    add("tpm20-da-default", DEF_POLICY_DA, "sha256", BANKS)
    custom = load("policy-custom.pol")
    add("custom-file", custom, "sha1", ["sha1"])
    add("custom-file", custom, "sha256", ["sha1", "sha256"])
    off = bytearray(DEF_POLICY_DA)
    off[3:7] = struct.pack("<I", 0)                 # policy_control bit 0 clear
    add("control-bit0-clear", bytes(off), "sha256", ["sha1", "sha256"])
    assert out[-1]["digest"] == H("sha256", bytes(4) + bytes(32)).hex()
    legacy = bytearray(custom)
    legacy[2] = 0                                   # old tb_polgen: hash_alg 0 = SHA-1
    add("custom-file-hash-alg-0", bytes(legacy), "sha1", ["sha1"])
    assert out[-1]["digest"] == policy_event(custom, "sha1", "sha1")
    return out


def read_cases():
    rows = []
    with open(CASES, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                cfg, entry, platform, expected = line.split("\t")
                rows.append({"config": cfg, "entry": entry, "platform": platform,
                             "tsv": expected})
    return rows


def prediction_vectors():
    out = []
    grub_cfg = rel(os.path.join(EXAMPLE, "grub.cfg"))
    for case in read_cases():
        if case["config"] != grub_cfg or case["platform"] != "pc":
            continue
        lines = read_tsv(os.path.join(ROOT, case["tsv"]))
        if not lines or lines[0]["command"] != "multiboot" or lines[0]["file"] != "/tboot.gz":
            continue                                # not an AEM (tboot) entry
        base = os.path.basename(case["tsv"])[:-len(".tsv")]
        tboot_cmdline = lines[0]["cmdline"]
        mods = []
        for l in lines[1:]:
            data = load(l["file"].lstrip("/"))
            if is_sinit_acmod(data):                # loader.c remove_txt_modules
                continue
            mods.append((l, data))
        assert len(mods) == 3
        modules = [(d, l["cmdline"], l["nounzip"]) for l, d in mods]
        mle1 = mle_digest(load("tboot.gz"), tboot_cmdline, "sha1")
        common = {
            "grub_cfg": grub_cfg, "entry": case["entry"], "platform": "pc",
            "boot_dir": rel(BOOT), "tboot_cmdline": tboot_cmdline,
            "module_files": [rel(os.path.join(BOOT, l["file"].lstrip("/"))) for l, _ in mods],
            "module_cmdlines": [l["cmdline"] for l, _ in mods],
            "tboot_version": "1.10.5",
        }

        # TPM 1.2, legacy PCR mapping, default policy (no policy in TPM NV)
        ev = tboot_events(DEF_POLICY_TPM12, modules, "1.2", ["sha1"])
        p18 = replay(ev, "sha1", 18, extend("sha1", bytes(20), bytes.fromhex(mle1)))
        p19 = replay(ev, "sha1", 19)
        m = [module_measurement(d, c, nz, "sha1") for d, c, nz in modules]
        z = bytes(20)
        assert p18 == extend("sha1", extend("sha1", z, bytes.fromhex(mle1)), bytes.fromhex(m[0])).hex()
        assert p19 == extend("sha1", extend("sha1", z, bytes.fromhex(m[1])), bytes.fromhex(m[2])).hex()
        out.append(dict(common, name=base + ".tpm12", tpm="1.2", pcr_map="legacy",
                        extpol=None, policy_file=None, mle={"sha1": mle1},
                        pcrs={"sha1": {"18": p18, "19": p19}}, events=ev))

        if base != "aem-top.pc":
            continue

        # TPM 1.2 legacy with the custom tb_polgen policy (0 -> 18 image hash,
        # any -> 19): module 0 is extended to PCR 18 twice (forced, then its entry)
        custom = load("policy-custom.pol")
        ev = tboot_events(custom, modules, "1.2", ["sha1"])
        assert [e["pcr"] for e in ev] == [17, 18, 18, 19, 19]
        p18 = replay(ev, "sha1", 18, extend("sha1", bytes(20), bytes.fromhex(mle1)))
        p19 = replay(ev, "sha1", 19)
        out.append(dict(common, name=base + ".tpm12-custom-policy", tpm="1.2",
                        pcr_map="legacy", extpol=None,
                        policy_file=rel(os.path.join(BOOT, "policy-custom.pol")),
                        mle={"sha1": mle1},
                        pcrs={"sha1": {"18": p18, "19": p19}}, events=ev))

        # TPM 2.0 (always DA), extpol=embedded, banks sha1+sha256, default DA
        # policy (any -> 17): everything goes to 17/18, PCR 19 stays zero
        banks = ["sha1", "sha256"]
        ev = tboot_events(DEF_POLICY_DA, modules, "2.0", banks, extpol="embedded")
        assert [e["pcr"] for e in ev] == [17, 17, 18, 18, 17, 17, 17, 17, 17, 17]
        assert all(e["pcr"] != 19 for e in ev)
        out.append(dict(common, name=base + ".tpm20-embedded", tpm="2.0",
                        pcr_map="da", extpol="embedded", policy_file=None,
                        mle={b: mle_digest(load("tboot.gz"), tboot_cmdline, b) for b in banks},
                        pcrs={b: {"19": replay(ev, b, 19)} for b in banks}, events=ev))
    return out


def compute():
    self_test()
    return {
        "generator": "Vectors/expected.py",
        "modules": module_vectors(),
        "mle": mle_vectors(),
        "policy_events": policy_vectors(),
        "predictions": prediction_vectors(),
    }


def render(obj):
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def main():
    text = render(compute())
    if "--check" in sys.argv[1:]:
        try:
            with open(OUT, encoding="utf-8") as f:
                old = f.read()
        except FileNotFoundError:
            print("%s missing" % rel(OUT))
            return 1
        if old != text:
            a, b = json.loads(old), json.loads(text)
            for k in sorted(set(a) | set(b)):
                if a.get(k) != b.get(k):
                    print("differs: %s" % k)
            if a == b:
                print("differs only in formatting")
            return 1
        print("%s is up to date" % rel(OUT))
        return 0
    with open(OUT, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s" % rel(OUT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
