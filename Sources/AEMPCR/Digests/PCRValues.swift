// SPDX-License-Identifier: Apache-2.0
/// PCR values per bank and index: the state a replay or a prediction ends in.
public struct PCRValues: Equatable, Sendable {
    public private(set) var values: [HashAlgorithm: [PCRIndex: Digest]] = [:]

    public init() {}

    public subscript(bank: HashAlgorithm, pcr: PCRIndex) -> Digest? {
        get { values[bank]?[pcr] }
        set {
            if let d = newValue { precondition(d.algorithm == bank, "value in the wrong bank") }
            values[bank, default: [:]][pcr] = newValue
        }
    }

    /// Extends `pcr` in the measurement's bank, starting from the DRTM initial value (zeros).
    public mutating func extend(_ pcr: PCRIndex, with measurement: Digest) {
        let bank = measurement.algorithm
        let old = self[bank, pcr] ?? .zeros(bank)
        self[bank, pcr] = old.extended(with: measurement)
    }

    public var banks: [HashAlgorithm] { values.keys.sorted() }
    public func pcrs(in bank: HashAlgorithm) -> [PCRIndex] { (values[bank] ?? [:]).keys.sorted() }
}
