// SPDX-License-Identifier: Apache-2.0
import AEMPCRSystem
import Glibc

/// Predicts the DRTM PCRs from the files of the next boot (tboot `policy.c`, `lcptools-v2/mlehash.c`): SINIT's MLE hash of
/// tboot, tboot's policy event, and tboot's module measurements, routed by the policy.
public struct Predictor: Sendable {
    public var configuration: LaunchConfiguration
    /// A custom policy (from a tb_polgen file / NV); nil for tboot's built-in default.
    public var customPolicy: TbootPolicy?

    public init(configuration: LaunchConfiguration, customPolicy: TbootPolicy? = nil) {
        self.configuration = configuration
        self.customPolicy = customPolicy
    }

    /// tboot ≤ 1.8.3's `skip_filename`: drop leading blanks, the first word, and blanks after it.
    public static func skipFilename(_ s: [UInt8]) -> [UInt8] {
        let sp = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
        var t = s[...]
        while t.first == sp || t.first == tab { t = t.dropFirst() }
        while let c = t.first, c != sp && c != tab { t = t.dropFirst() }
        while t.first == sp || t.first == tab { t = t.dropFirst() }
        return Array(t)
    }

    public static func skipFilename(_ s: String) -> String {
        String(decoding: skipFilename(Array(s.utf8)), as: UTF8.self)
    }

    /// Reads the files once each and predicts. `alsoMLEBanks`: banks to compute SINIT's MLE
    /// hash in besides the active ones (every bank of a current log's MLE event).
    public func predict(_ boot: BootSpec, alsoMLEBanks: [HashAlgorithm] = []) throws -> Prediction {
        let c = configuration
        let computable = c.extendedBanks.filter(\.isComputable)
        // SINIT hashes the MLE in every active bank.
        let mleBanks = Array(Set(c.activeBanks + alsoMLEBanks).filter(\.isComputable)).sorted()
        var notes = boot.notes

        // tboot's own command line: skip_filename ≤ 1.8.3, then its 511-byte buffer (tboot.c).
        // SINIT's MLE hash is computed on its own thread while the modules are read.
        let line = c.tbootVersion.skipsFilename ? Predictor.skipFilename(boot.tbootCmdline) : boot.tbootCmdline
        let mleJob = Threads.Locked<Result<(MLEImage, [UInt8], Bool, [HashAlgorithm: Digest]), Error>?>(nil)
        let thread = Threads.start { [boot] in
            let result = Result {
                let image = try MLEImage(path: boot.tbootPath)
                let (kept, cut) = image.effectiveCmdline(line)
                return (image, kept, cut, try image.hash(cmdline: kept, banks: mleBanks))
            }
            mleJob.withLock { $0.value = result }
        }
        let hashedResult = Result {
            try ModuleMeasurement.measureAll(boot.modules, banks: computable, skipFilename: c.tbootVersion.skipsFilename)
        }
        Threads.join(thread)
        let mle: MLEImage, tbootLine: [UInt8], truncated: Bool, mleDigests: [HashAlgorithm: Digest]
        do {
            (mle, tbootLine, truncated, mleDigests) = try mleJob.value!.get()
        } catch let e as CodedError where boot.grubEntry != nil && [.tbootNotELF32, .tbootNoMLEHeader].contains(e.code) {
            let g = boot.grubEntry!
            throw CodedError(.grubEntryWithoutTboot, source: g.config, line: g.line,
                            "entry '\(g.title)' boots \(boot.tbootPath), which is not tboot (\(e.reason)); pick an AEM entry")
        }
        if truncated {
            notes.append("tboot's command line is longer than its buffer; tboot keeps, and SINIT measures, only its first \(tbootLine.count) bytes")
        }
        let hashed = try hashedResult.get()

        // Modules: drop SINIT ACMs / LCP data (never module 0), then number them.
        var modules = [MeasuredModule]()
        var next = 0
        for (k, var m) in hashed.enumerated() {
            if k > 0, let kind = m.removedAs {
                notes.append("\(m.spec.path) is a \(kind == .sinitACM ? "SINIT ACM" : "LCP policy-data file"); tboot removes it before measuring")
                m.index = nil
            } else {
                m.removedAs = nil
                m.index = next
                next += 1
            }
            modules.append(m)
        }
        let measured = modules.filter { $0.index != nil }

        let policy = customPolicy ?? TbootPolicy.defaultPolicy(for: c)
        var events = [PredictedEvent]()
        func add(_ pcr: PCRIndex, _ type: EventType, _ comp: Component, file: String?, cmdline: [UInt8]?,
                 _ what: String, _ digests: [HashAlgorithm: Digest]) {
            events.append(PredictedEvent(pcr: pcr, type: type, part: .measured(comp), file: file, cmdline: cmdline,
                                         what: what, digests: digests))
        }

        // SINIT: the MLE hash. Legacy: first extend of PCR18. DA: one of SINIT's PCR17 events.
        add(c.usesDA ? 17 : 18, .mleHash, .mle, file: boot.tbootPath, cmdline: tbootLine, "tboot \(boot.tbootPath) with command line '\(Escape.bytes(tbootLine))' (measured by SINIT)", mleDigests)

        // tboot: policy event to 17 (and 18 under DA).
        var policyDigests = [HashAlgorithm: Digest]()
        for b in computable {
            policyDigests[b] = policy.policyEvent(bank: b, current: c.currentAlgorithm, fromNV: customPolicy != nil)
        }
        let policyWhat = "policy: \(policy.source), control \(hex0x(policy.control, width: 8))"
        let policyFile = customPolicy != nil ? policy.source : nil
        add(17, .tbootMeasurement, .policy, file: policyFile, cmdline: nil, policyWhat, policyDigests)
        if c.usesDA { add(18, .tbootMeasurement, .policy, file: policyFile, cmdline: nil, policyWhat, policyDigests) }

        // Module 0 always (verify_all_modules), then each module by its policy entry.
        if let m0 = measured.first {
            add(c.module0PCR, .tbootMeasurement, .module(index: 0), file: m0.spec.path, cmdline: m0.hashedCmdline,
                Predictor.describe(m0), m0.measurements)
        } else {
            notes.append("no module after tboot: tboot would not find Xen (an empty boot)")
        }
        for m in measured {
            let i = m.index!
            guard let entry = policy.entry(forModule: i) else {
                if policy.policyType == .continueNonFatal {
                    notes.append("module \(i) (\(m.spec.path)) has no policy entry; the nonfatal policy lets it boot unmeasured")
                    continue
                }
                throw CodedError(.policyNoEntryForModule, source: policy.source,
                                 "module \(i) (\(m.spec.path)) has no entry in the policy and the policy type halts: tboot would stop the boot")
            }
            try checkImageHashes(entry, module: m, policy: policy, notes: &notes)
            guard let pcr = entry.pcrIndex else { continue }
            add(pcr, .tbootMeasurement, .module(index: i), file: m.spec.path, cmdline: m.hashedCmdline,
                Predictor.describe(m), m.measurements)
        }
        if policy.entries.contains(where: \.isNV), c.tpm == .tpm12 {
            notes.append("the policy names TPM NV indices; with measure_nv=true tboot extends them into PCR\(policy.entries.first(where: \.isNV)!.pcr), which this prediction does not cover")
        }

        // Replay what the files fix; say which PCRs also hold SINIT events.
        var pcrs = PCRValues()
        var incomplete = [IncompletePCR]()
        let sinitPCRs: [PCRIndex] = c.usesDA ? [17, 18] : [17]
        let reported: Set<PCRIndex> = Set([17, 18, 19]).union(events.map(\.pcr))
        for bank in c.activeBanks {
            for pcr in reported.sorted() {
                if sinitPCRs.contains(pcr) {
                    incomplete.append(IncompletePCR(pcr: pcr, bank: bank, reason:
                        "also holds SINIT's events; needs the current DRTM event log (--event-log)"))
                    continue
                }
                if !bank.isComputable {
                    incomplete.append(IncompletePCR(pcr: pcr, bank: bank, reason: "bank \(bank) cannot be computed"))
                    continue
                }
                var v = Digest.zeros(bank)
                for e in events where e.pcr == pcr {
                    if let d = e.digests[bank] { v = v.extended(with: d) }
                }
                pcrs[bank, pcr] = v
            }
        }
        if c.tpm == .tpm20, c.extendedBanks.contains(where: { !$0.isComputable }) {
            notes.append("extpol=agile makes the TPM hash in every active bank, including ones this tool cannot compute")
        }
        for bank in c.activeBanks where !c.extendedBanks.contains(bank) {
            notes.append("with extpol=\(c.extendPolicy.rawValue) tboot does not extend the \(bank) bank: only SINIT's events are in it")
        }
        return Prediction(configuration: c, policy: policy, policyFromFile: customPolicy != nil, boot: boot,
                          tbootCmdline: tbootLine, mleHeader: mle.header, modules: modules, events: events,
                          pcrs: pcrs, incomplete: incomplete, notes: notes)
    }

    /// tboot checks TB_HTYPE_IMAGE hashes only under a FIXED extend policy (policy.c).
    private func checkImageHashes(_ entry: TbootPolicy.Entry, module m: MeasuredModule,
                                  policy: TbootPolicy, notes: inout [String]) throws {
        guard entry.hashType == 1 else { return }
        let c = configuration
        guard c.tpm == .tpm12 || [.sha1, .sha256, .sha384, .sha512].contains(c.extendPolicy) else { return }
        guard policy.hashAlgorithm == c.currentAlgorithm, let d = m.measurements[c.currentAlgorithm] else {
            notes.append("policy entry for module \(m.index!) lists \(policy.hashAlgorithm) hashes but tboot measures in \(c.currentAlgorithm); tboot's check is not modelled")
            return
        }
        if entry.hashes.contains(d.bytes) { return }
        let msg = "module \(m.index!) (\(m.spec.path)) measures \(d.hex), which is not among the policy's \(entry.hashes.count) allowed hash(es)"
        if policy.policyType == .halt {
            throw CodedError(.policyNoEntryForModule, source: policy.source, msg + "; the policy halts: tboot would stop the boot")
        }
        notes.append(msg + "; tboot continues (policy type \(policy.policyType == .continueNonFatal ? "nonfatal" : "continue")) and extends it anyway")
    }

    static func describe(_ m: MeasuredModule) -> String {
        let how = m.encoding == .gzip ? "gunzipped, \(m.imageSize) bytes" : "\(m.imageSize) bytes"
        return "module \(m.index!): \(m.spec.path) (\(how)) cmdline '\(Escape.bytes(m.hashedCmdline))'"
    }
}
