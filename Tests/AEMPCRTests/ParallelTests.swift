// SPDX-License-Identifier: Apache-2.0
import Foundation
import Testing
@testable import AEMPCR

/// The concurrent paths (a thread per bank, several files at once) give exactly the sequential
/// results.
@Suite struct ParallelTests {
    @Test(arguments: [0, 1, 1 << 20, (1 << 20) + 1, 9 * (1 << 20) + 12345])
    func pipelineEqualsSequential(size: Int) throws {
        let dir = try tempDir()
        var rng = SystemRandomNumberGenerator()
        let data = (0..<size).map { i in i % 3 == 0 ? UInt8.random(in: 0...255, using: &rng) : UInt8(truncatingIfNeeded: i >> 7) }
        try write(data, to: dir + "/f")
        try run("/bin/gzip", ["-n", "-k", dir + "/f"])
        for file in ["/f", "/f.gz"] {
            let par = try ModuleImage.hash(path: dir + file, unzip: true, banks: HashAlgorithm.computable, parallel: true)
            let seq = try ModuleImage.hash(path: dir + file, unzip: true, banks: HashAlgorithm.computable, parallel: false)
            #expect(par.digests == seq.digests && par.imageSize == seq.imageSize && par.imageSize == UInt64(size))
        }
    }

    @Test func measureAllEqualsSequential() throws {
        let dir = try tempDir()
        var specs = [BootSpec.Module]()
        for k in 0..<5 {
            try write((0..<(300_000 * (k + 1))).map { UInt8(truncatingIfNeeded: $0 &* (k + 3)) }, to: dir + "/m\(k)")
            if k % 2 == 0 { try run("/bin/gzip", ["-n", dir + "/m\(k)"]) }
            specs.append(BootSpec.Module(path: dir + "/m\(k)" + (k % 2 == 0 ? ".gz" : ""), cmdline: "placeholder \(k)"))
        }
        let par = try ModuleMeasurement.measureAll(specs, banks: HashAlgorithm.computable, skipFilename: false, parallel: true)
        let seq = try ModuleMeasurement.measureAll(specs, banks: HashAlgorithm.computable, skipFilename: false, parallel: false)
        #expect(par.map(\.measurements) == seq.map(\.measurements))
        #expect(par.map(\.spec.path) == specs.map(\.path))
    }

    /// A failing file among several: the error is reported and no thread is left waiting.
    @Test func errorInOneFile() throws {
        let dir = try tempDir()
        try write(Array(repeating: 7, count: 3_000_000), to: dir + "/ok")
        try write([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3], to: dir + "/bad.gz")
        let specs = [BootSpec.Module(path: dir + "/ok", cmdline: ""), BootSpec.Module(path: dir + "/bad.gz", cmdline: "")]
        #expect {
            try ModuleMeasurement.measureAll(specs, banks: HashAlgorithm.computable, skipFilename: false)
        } throws: { ($0 as? CodedError)?.code.isFile == true }
    }
}
