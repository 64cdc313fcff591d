// SPDX-License-Identifier: Apache-2.0
/// What a measurement is, for explanations and for matching log events.
public enum Component: Sendable, Equatable {
    /// SINIT's measurement of tboot (type 0x404).
    case mle
    /// tboot's verified-launch policy event (type 0x501).
    case policy
    /// tboot's measurement of module `index` (after SINIT/LCP modules are removed).
    case module(index: Int)

    public var label: String {
        switch self {
        case .mle: return "MLE hash"
        case .policy: return "policy"
        case .module(let i): return "module \(i)"
        }
    }

    /// The component a `label` names ("MLE hash", "policy", "module N"); nil for another text.
    public init?(label: String) {
        switch label {
        case Component.mle.label: self = .mle
        case Component.policy.label: self = .policy
        default:
            let number = label.dropFirst("module ".count)
            guard label.hasPrefix("module "), !number.isEmpty, number.count <= 9,
                  number.allSatisfy({ $0.isASCII && $0.isNumber }), let i = Int(number) else { return nil }
            self = .module(index: i)
        }
    }
}

/// One extend of a boot, from the measured file to what is printed and saved: what it is, its
/// PCR, its digest per bank and the sentence that explains it. The predictor makes them from the
/// files (`Prediction.events`), the log predictor adds the current log's kept events
/// (`LogPrediction.events`), `predict` prints them, `EventDiff` compares two lists of them and
/// `seal` saves them (`SealedPrediction.events`) for `check-boot`.
public struct PredictedEvent: Sendable, Equatable {
    /// What the event is.
    public enum Part: Sendable, Equatable {
        /// Measured from the next boot's files: SINIT's MLE hash of tboot, tboot's policy event,
        /// tboot's measurement of a module.
        case measured(Component)
        /// An event as a DRTM log holds it, known by its type only: SINIT's own events and
        /// tboot's TPM NV measurement, kept from the current log, or an event of a log read back.
        case logged
    }

    public var pcr: PCRIndex
    public var type: EventType
    public var part: Part
    /// The file measured: tboot's image (the MLE hash), the policy file (nil for tboot's
    /// built-in policy), the module's file; nil for a logged event.
    public var file: String?
    /// The command line measured with the file, as it is hashed: tboot's as SINIT measures it,
    /// a module's as tboot hashes it (after `skip_filename` on tboot ≤ 1.8.3); nil otherwise.
    public var cmdline: [UInt8]?
    /// The explanation: "module 0: /boot/xen.gz (gunzipped, …) cmdline 'placeholder …'".
    public var what: String
    /// The extended digest per bank.
    public var digests: [HashAlgorithm: Digest]

    public init(pcr: PCRIndex, type: EventType, part: Part, file: String? = nil, cmdline: [UInt8]? = nil,
                what: String, digests: [HashAlgorithm: Digest]) {
        self.pcr = pcr
        self.type = type
        self.part = part
        self.file = file
        self.cmdline = cmdline
        self.what = what
        self.digests = digests
    }

    /// An event known by its type and a description only (a logged event; one read back from a
    /// saved prediction that does not name its component).
    public init(pcr: PCRIndex, type: EventType, what: String, digests: [HashAlgorithm: Digest]) {
        self.init(pcr: pcr, type: type, part: .logged, what: what, digests: digests)
    }

    /// A record of a DRTM log, described by `what`.
    public init(logged e: DRTMEvent, what: String) {
        self.init(pcr: e.pcr, type: e.type, part: .logged, what: what, digests: e.digests)
    }

    /// The component, for output: "MLE hash", "policy", "module N"; a logged event by its type:
    /// "MLE hash" (0x404), "tboot event" (0x501), "SINIT" (any other).
    public var label: String {
        switch part {
        case .measured(let c): return c.label
        case .logged:
            switch type {
            case .mleHash: return Component.mle.label
            case .tbootMeasurement: return "tboot event"
            default: return "SINIT"
            }
        }
    }

    /// The measured component. Every event of a files-only `Prediction` has one; only a
    /// `LogPrediction` (and a saved prediction) holds logged events. `notice` reads this until its
    /// state moves to the library (issue 20); elsewhere read `part`.
    public var component: Component {
        guard case .measured(let c) = part else {
            preconditionFailure("PredictedEvent.component read for a logged event (\(type.hex) in PCR\(pcr))")
        }
        return c
    }
}

/// A PCR and bank whose value the files alone do not fix.
public struct IncompletePCR: Sendable, Equatable {
    public var pcr: PCRIndex
    public var bank: HashAlgorithm
    public var reason: String
}

/// A module as tboot sees it.
public struct MeasuredModule: Sendable {
    public var spec: BootSpec.Module
    /// Index after TXT modules are removed; nil when removed.
    public var index: Int?
    public var removedAs: TXTModule?
    public var encoding: ModuleImage.Encoding
    public var fileSize: UInt64
    public var imageSize: UInt64
    /// The command line tboot hashes (after `skip_filename` on tboot ≤ 1.8.3).
    public var hashedCmdline: [UInt8]
    public var cmdlineDigests: [HashAlgorithm: Digest]
    public var imageDigests: [HashAlgorithm: Digest]
    /// `H(H(cmdline) || H(image))` per bank tboot computes.
    public var measurements: [HashAlgorithm: Digest]
}

/// The predicted DRTM PCRs of the next boot, with every extend explained.
public struct Prediction: Sendable {
    public var configuration: LaunchConfiguration
    public var policy: TbootPolicy
    public var policyFromFile: Bool
    public var boot: BootSpec
    /// tboot's command line as SINIT measures it (after truncation/skip rules).
    public var tbootCmdline: [UInt8]
    public var mleHeader: MLEImage.Header
    public var modules: [MeasuredModule]
    /// Extends in order.
    public var events: [PredictedEvent]
    /// Values of the PCRs that follow from the files.
    public var pcrs: PCRValues
    public var incomplete: [IncompletePCR]
    /// Facts the user should know (removed modules, unmeasured modules, policy checks).
    public var notes: [String]

    /// The banks reported, in TCG order.
    public var banks: [HashAlgorithm] { configuration.activeBanks }
}
