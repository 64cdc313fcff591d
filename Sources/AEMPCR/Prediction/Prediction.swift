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
}

/// One extend in the predicted launch, in every bank it reaches.
public struct PredictedEvent: Sendable, Equatable {
    public var pcr: PCRIndex
    public var type: EventType
    public var component: Component
    /// Human description: "module 0: /boot/xen.gz (gunzipped, …) cmdline 'placeholder …'".
    public var what: String
    /// The extended digest per bank.
    public var digests: [HashAlgorithm: Digest]
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
