// SPDX-License-Identifier: Apache-2.0
/// tboot's measurement of a module (`policy.c: hash_module`): `M = H( H(cmdline) || H(image) )`
/// with the image as GRUB loaded it. Each file is read once for all banks.
public enum ModuleMeasurement {
    /// Bytes kept from the start of each image to recognise SINIT ACMs and LCP data.
    static let prefixSize = 64 << 10

    /// Measures modules, several files at once on a multi-core machine; results in input order.
    public static func measureAll(_ specs: [BootSpec.Module], banks: [HashAlgorithm], skipFilename: Bool,
                                  parallel: Bool = true) throws -> [MeasuredModule] {
        try parallelMap(count: specs.count, workers: parallel ? availableProcessors : 1) {
            try measure(specs[$0], banks: banks, skipFilename: skipFilename, parallel: parallel)
        }
    }

    /// Measures one module; `skipFilename` applies tboot ≤ 1.8.3's removal of the first word.
    /// With `parallel`, each bank hashes on its own thread while this one reads and gunzips.
    public static func measure(_ spec: BootSpec.Module, banks: [HashAlgorithm], skipFilename: Bool = false,
                               parallel: Bool = true) throws -> MeasuredModule {
        var prefix = [UInt8]()
        let (encoding, fileSize, imageSize, image) = try ModuleImage.hashStream(
            path: spec.path, unzip: !spec.noUnzip, banks: banks, parallel: parallel
        ) { chunk in
            if prefix.count < prefixSize {
                prefix.append(contentsOf: chunk.prefix(prefixSize - prefix.count))
            }
        }
        let line = skipFilename ? Predictor.skipFilename(spec.cmdline) : spec.cmdline
        var cmd = MultiHasher(banks)
        cmd.update(line)
        let cmdDigests = cmd.finalize()
        var measurements = [HashAlgorithm: Digest]()
        for b in banks {
            measurements[b] = MultiHasher.hash(b, cmdDigests[b]!.bytes + image[b]!.bytes)
        }
        return MeasuredModule(spec: spec, index: nil, removedAs: TXTModule.classify(prefix: prefix, size: imageSize),
                              encoding: encoding, fileSize: fileSize, imageSize: imageSize, hashedCmdline: line,
                              cmdlineDigests: cmdDigests, imageDigests: image, measurements: measurements)
    }
}
