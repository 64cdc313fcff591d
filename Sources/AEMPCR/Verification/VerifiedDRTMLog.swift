// SPDX-License-Identifier: Apache-2.0
/// A DRTM log whose replay matched the PCR values it was checked against (STYLE 6: unverified
/// in, verified out). Only `Verifier.verified` makes one: holding a `VerifiedDRTMLog` is the
/// proof that the check was made, with the values and their source beside it.
public struct VerifiedDRTMLog: Sendable {
    public let log: DRTMEventLog
    public let report: VerificationReport
    /// The values it was checked against (with any other PCR read in the same read, such as
    /// PCR13 for a seal), and where they came from (for messages).
    public let pcrs: PCRValues
    public let pcrSource: String

    /// Internal: a verified log is the verifier's answer, never a caller's claim.
    init(log: DRTMEventLog, report: VerificationReport, pcrs: PCRValues, pcrSource: String) {
        self.log = log
        self.report = report
        self.pcrs = pcrs
        self.pcrSource = pcrSource
    }
}

extension Verifier {
    /// `log` checked against `pcrs` (read from `source`): the inputs a verification can be made
    /// from (`checkInputs`), then the replay, every PCR and bank the log extends, and every
    /// event's data. Throws `log-not-verified` naming what differs (and `--force` where the
    /// command offers it: `forceOffered`).
    public static func verified(_ log: DRTMEventLog, against pcrs: PCRValues, source: String,
                                forceOffered: Bool = true) throws -> VerifiedDRTMLog {
        let report = verify(log, against: pcrs)
        try checkInputs(report, pcrs: pcrs, log: log, pcrSource: source)
        guard report.verified else {
            let bad = report.rows.filter { $0.status == .mismatch }.map { "PCR\($0.pcr) \($0.bank)" }
            let data = report.dataMismatches.map { "event \($0.eventIndex) \($0.bank) digest is not H(data)" }
            let what = (bad + data).isEmpty ? ["no PCR in common"] : bad + data
            throw CodedError(.logNotVerified, "\(log.source) does not verify against \(source) (\(what.joined(separator: ", "))); run 'aem-pcr verify' for details\(forceOffered ? ", or --force" : "")")
        }
        return VerifiedDRTMLog(log: log, report: report, pcrs: pcrs, pcrSource: source)
    }
}

/// The current boot's log as the predictor gets it: verified, or used unverified for a reason
/// the caller states (so the choice is visible where it is made, and in the type).
public enum PredictionLog: Sendable {
    /// Why a log is used without a verification that passed.
    public enum Unverified: Sendable {
        /// The user asked (--force); the report when the PCR values could be read.
        case forced(VerificationReport?)
        /// The caller does not check it (notice: a hint, read without the TPM), and says why.
        case notChecked(String)
    }

    case verified(VerifiedDRTMLog)
    case unverified(DRTMEventLog, because: Unverified)

    public var log: DRTMEventLog {
        switch self {
        case .verified(let v): v.log
        case .unverified(let log, _): log
        }
    }

    /// The verification's report, where one was made.
    public var report: VerificationReport? {
        switch self {
        case .verified(let v): v.report
        case .unverified(_, because: .forced(let report)): report
        case .unverified(_, because: .notChecked): nil
        }
    }
}

extension LogPredictor {
    /// The prediction from the current boot's log, verified or explicitly not.
    /// `allowPolicyChange` and `forceOffered` as for `predict(log:boot:predictor:allowPolicyChange:forceOffered:)`.
    public static func predict(_ current: PredictionLog, boot: BootSpec, predictor: Predictor,
                               allowPolicyChange: Bool = false, forceOffered: Bool = true) throws -> LogPrediction {
        try predict(log: current.log, boot: boot, predictor: predictor, allowPolicyChange: allowPolicyChange, forceOffered: forceOffered)
    }
}
