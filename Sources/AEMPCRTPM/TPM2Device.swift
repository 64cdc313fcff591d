// SPDX-License-Identifier: Apache-2.0
internal import CTSS2
import AEMPCR
import Glibc

/// A TPM 2.0 reached through tpm2-tss: owns the TCTI and ESYS contexts and frees them on every
/// path (`deinit`). Not thread-safe: one command at a time, as ESYS requires.
public final class TPM2Device {
    public let tcti: TCTIChoice
    private var tctiContext: OpaquePointer?
    private var esysContext: OpaquePointer?

    /// Opens the TPM through one of the TCTIs of `TCTIChoice.allowedNames` (any other is
    /// refused before anything is loaded). tpm2-tss's own log lines are silenced unless
    /// `verbose`. Opening it and every command are bounded by `TPMWatchdog`.
    public convenience init(tcti: TCTIChoice, verbose: Bool = false) throws {
        if let refusal = tcti.refusal { throw refusal }
        try self.init(tcti: tcti, verbose: verbose, loaderConfiguration: tcti.loaderConfiguration)
    }

    /// Opens the TPM through `loaderConfiguration` as given, whatever TCTI it names (tests:
    /// the pcap TCTI, to look at what crosses to the TPM).
    init(tcti: TCTIChoice, verbose: Bool, loaderConfiguration: String) throws {
        self.tcti = tcti
        TPM2Device.configureLogging(verbose: verbose)
        if let path = tcti.devicePath { try TPM2Device.checkDevice(path, named: tcti.origin != "default") }
        var t: OpaquePointer?
        let rc = TPMWatchdog.shared.guarding(tcti.transport) { Tss2_TctiLdr_Initialize(loaderConfiguration, &t) }
        guard rc == 0, let t else {
            throw CodedError(.tpmUnreachable, "cannot open the TPM through TCTI '\(tcti.configuration)'\(tcti.origin == "default" ? "" : " (from \(tcti.origin))"): \(TPM2Device.decode(rc))")
        }
        tctiContext = t
        var e: OpaquePointer?
        let erc = TPMWatchdog.shared.guarding(tcti.transport) { Esys_Initialize(&e, t, nil) }
        guard erc == 0, let e else {
            Tss2_TctiLdr_Finalize(&tctiContext)
            throw TPM2Device.error(erc, doing: "starting a session with the TPM through '\(tcti.configuration)'")
        }
        esysContext = e
    }

    deinit {
        TPMWatchdog.shared.guarding(tcti.transport) {
            if esysContext != nil { Esys_Finalize(&esysContext) }
            if tctiContext != nil { Tss2_TctiLdr_Finalize(&tctiContext) }
        }
    }

    /// Runs one ESYS call (one TPM command, or a few for ESYS's own bookkeeping) under the
    /// watchdog's bound.
    func command<T>(_ body: () throws -> T) rethrows -> T {
        try TPMWatchdog.shared.guarding(tcti.transport, body)
    }

    /// The ESYS context, for other files of this target (sealing).
    var esys: OpaquePointer { esysContext! }

    // MARK: Errors

    /// tpm2-tss logs to standard error by itself; TSS2_LOG controls it and is read at the first
    /// log call, so it is set before any TPM call.
    static func configureLogging(verbose: Bool) {
        setenv("TSS2_LOG", verbose ? "all+WARNING" : "all+NONE", 1)
    }

    /// A device TCTI on a path that is missing or not ours fails inside tpm2-tss with a bare I/O
    /// error; say what is wrong instead.
    static func checkDevice(_ path: String, named: Bool = false) throws {
        var st = stat()
        if stat(path, &st) != 0 {
            if errno == EACCES {
                throw CodedError(.tpmPermission, "no permission to reach \(path): run as root or join the tss group")
            }
            let other = path == "/dev/tpmrm0" && access("/dev/tpm0", F_OK) == 0
                ? " (/dev/tpm0 exists without a resource manager: is this a TPM 1.2? then aem-pcr reads its PCRs from sysfs)"
                : named ? " (is the path right, and the TPM 2.0 enabled in the firmware?)"
                : " (is there a TPM 2.0, enabled in the firmware? to use a software TPM, give --tcti)"
            throw CodedError(.tpmNoDevice, "no TPM 2.0 device \(path)\(other)")
        }
        if st.st_mode & S_IFMT != S_IFCHR {
            throw CodedError(.tpmNoDevice, "\(path) is not a character device, so not a TPM: a device TCTI names /dev/tpmrm0 or /dev/tpm0")
        }
        if access(path, R_OK | W_OK) != 0 {
            throw CodedError(.tpmPermission, "no permission on \(path): run as root or join the tss group")
        }
    }

    /// tpm2-tss's decoding of a response code, e.g. `tcti:IO failure`.
    static func decode(_ rc: UInt32) -> String {
        guard let s = Tss2_RC_Decode(rc) else { return String(format0x: rc) }
        return String(cString: s)
    }

    /// A sentence for a failed TPM command.
    static func error(_ rc: UInt32, doing what: String) -> CodedError {
        let layer = aempcr_rc_layer(rc)
        if layer == 0 {
            // The TPM's own response codes (TPM 2.0 Part 2, 6.6). Format-zero codes compare whole.
            switch rc & 0xFFF {
            case 0x921:
                return CodedError(.tpmLockout, "the TPM is in dictionary-attack lockout while \(what): wait for the lockout to end or clear it with the lockout password (tpm2_dictionarylockout -c)")
            case 0x100:
                return CodedError(.tpmNotStarted, "the TPM has not been started (TPM2_Startup) while \(what): the firmware or kernel normally does this; for a software TPM start it with --flags startup-clear")
            case 0x908, 0x90A, 0x922:
                return CodedError(.tpmBusy, "the TPM is busy (\(decode(rc))) while \(what): try again")
            default: break
            }
        }
        if layer == aempcr_rc_tcti_layer() {
            return CodedError(.tpmUnreachable, "lost the TPM while \(what): \(decode(rc))")
        }
        return CodedError(.tpmError, "the TPM refused \(what): \(decode(rc)) (response code \(String(format0x: rc)))")
    }

    // MARK: PCRs

    /// The banks the TPM has allocated with at least one PCR (TPM2_GetCapability(PCRS)).
    public func activeBanks() throws -> [HashAlgorithm] {
        var more: UInt8 = 0
        var data: UnsafeMutablePointer<TPMS_CAPABILITY_DATA>?
        let rc = command {
            Esys_GetCapability(esys, aempcr_esys_tr_none(), aempcr_esys_tr_none(), aempcr_esys_tr_none(),
                               0x0000_0005 /* TPM2_CAP_PCRS */, 0, 1, &more, &data)
        }
        defer { if let data { Esys_Free(data) } }
        guard rc == 0, let data else { throw TPM2Device.error(rc, doing: "listing its PCR banks") }
        return TPM2Device.selected(data.pointee.data.assignedPCR).filter { !$0.pcrs.isEmpty }.map(\.bank).sorted()
    }

    /// The banks of a PCR selection, in its order, each with the PCRs its bitmap selects
    /// (ascending); the counts the TPM gave are bounded by the arrays.
    private static func selected(_ list: TPML_PCR_SELECTION) -> [(bank: HashAlgorithm, pcrs: [PCRIndex])] {
        var list = list
        let count = Int(list.count)
        return withUnsafeBytes(of: &list.pcrSelections) { raw in
            let all = raw.bindMemory(to: TPMS_PCR_SELECTION.self)
            return all.prefix(min(count, all.count)).map { s in
                let bits = withUnsafeBytes(of: s.pcrSelect) { Array($0.prefix(Int(min(s.sizeofSelect, 4)))) }
                var pcrs = [PCRIndex]()
                for (byte, v) in bits.enumerated() {
                    for bit in 0..<8 where v & (1 << bit) != 0 { pcrs.append(PCRIndex(rawValue: UInt32(byte * 8 + bit))) }
                }
                return (HashAlgorithm(rawValue: s.hash), pcrs)
            }
        }
    }

    /// Reads `pcrs` in each of `banks`. TPM2_PCR_Read returns at most eight digests a call, so
    /// it is repeated for the rest; the PCR update counter must not move between the calls (else
    /// the values would mix two states): then the whole read starts again, up to three times.
    /// `active`: what `activeBanks()` returned, when the caller has asked already.
    public func readPCRs(_ pcrs: [PCRIndex], banks: [HashAlgorithm], active: [HashAlgorithm]? = nil) throws -> PCRValues {
        let active = try active ?? activeBanks()
        for b in banks where !active.contains(b) {
            throw CodedError(.tpmBankNotActive, "the PCR bank \(b) is not active in this TPM (active: \(active.map(\.description).joined(separator: ", ")))")
        }
        for p in pcrs where p.rawValue > 23 {
            throw CodedError(.tpmError, "PCR\(p) does not exist (a PC Client TPM has PCR0–23)")
        }
        for _ in 0..<3 {
            if let values = try readOnce(pcrs, banks: banks) { return values }
        }
        throw CodedError(.tpmPCRsChanging, "the PCRs kept changing while they were read (the update counter moved three times); try again when nothing extends them")
    }

    /// One consistent read, or nil when the update counter moved between calls.
    private func readOnce(_ pcrs: [PCRIndex], banks: [HashAlgorithm]) throws -> PCRValues? {
        var wanted: [(HashAlgorithm, PCRIndex)] = banks.flatMap { b in pcrs.map { (b, $0) } }
        var values = PCRValues()
        var counter: UInt32? = nil
        while !wanted.isEmpty {
            var selection = TPML_PCR_SELECTION()
            var order = [HashAlgorithm]()
            for (b, _) in wanted where !order.contains(b) { order.append(b) }
            selection.count = UInt32(order.count)
            withUnsafeMutableBytes(of: &selection.pcrSelections) { raw in
                let all = raw.bindMemory(to: TPMS_PCR_SELECTION.self)
                for (i, b) in order.enumerated() {
                    all[i].hash = b.rawValue
                    all[i].sizeofSelect = 3
                    var bits: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
                    withUnsafeMutableBytes(of: &bits) { bitBytes in
                        for (wb, p) in wanted where wb == b { bitBytes[Int(p.rawValue / 8)] |= 1 << (p.rawValue % 8) }
                    }
                    all[i].pcrSelect = bits
                }
            }
            var update: UInt32 = 0
            var outSel: UnsafeMutablePointer<TPML_PCR_SELECTION>?
            var digests: UnsafeMutablePointer<TPML_DIGEST>?
            let rc = command {
                Esys_PCR_Read(esys, aempcr_esys_tr_none(), aempcr_esys_tr_none(), aempcr_esys_tr_none(),
                              &selection, &update, &outSel, &digests)
            }
            defer {
                if let outSel { Esys_Free(outSel) }
                if let digests { Esys_Free(digests) }
            }
            guard rc == 0, let outSel, let digests else { throw TPM2Device.error(rc, doing: "reading PCRs") }
            if let c = counter, c != update { return nil }
            counter = update
            // The returned selection says, in order, which PCRs the digests belong to.
            let returned = TPM2Device.selected(outSel.pointee).flatMap { s in s.pcrs.map { (s.bank, $0) } }
            var list = digests.pointee
            let count = Int(list.count)
            guard count == returned.count, count > 0 else {
                throw CodedError(.tpmError, "the TPM answered a PCR read with \(count) digests for \(returned.count) selected PCRs")
            }
            withUnsafeBytes(of: &list.digests) { raw in
                let all = raw.bindMemory(to: TPM2B_DIGEST.self)
                for (i, (b, p)) in returned.enumerated() where i < all.count {
                    var d = all[i]
                    let bytes = withUnsafeBytes(of: &d.buffer) { Array($0.prefix(Int(d.size))) }
                    if let digest = Digest(b, bytes: bytes) { values[b, p] = digest }
                }
            }
            let before = wanted.count
            wanted.removeAll { w in returned.contains { $0.0 == w.0 && $0.1 == w.1 } }
            if wanted.count == before {
                throw CodedError(.tpmError, "the TPM returned none of the PCRs asked for")
            }
        }
        for b in banks {
            for p in pcrs where values[b, p] == nil {
                throw CodedError(.tpmError, "the TPM returned no value for PCR\(p) in \(b)")
            }
        }
        return values
    }
}

extension String {
    init<T: BinaryInteger>(format0x value: T) {
        self = "0x" + String(value, radix: 16)
    }
}
