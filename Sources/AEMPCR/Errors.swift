// SPDX-License-Identifier: Apache-2.0
/// The common face of every error aem-pcr reports: a stable code and a one-line message naming
/// the file, PCR, bank or offset concerned. The library never prints or exits; the CLI prints
/// `aem-pcr: error: <description>` (and, with `--verbose`, the code) and exits 2.
public protocol AEMPCRError: Error, CustomStringConvertible, Sendable {
    /// A stable, documented identifier such as `gzip-truncated` (aem-pcr(8), ERRORS).
    var errorCode: String { get }
}

/// The one error type of every layer (library, TPM, sealing, CLI), after swift-asn1's
/// `ASN1Error`: a code from a fixed set of static members, where (file, byte offset, line,
/// physical address), and one sentence a user can act on. Two errors are equal when their codes
/// are. Each layer declares its codes in an extension of `Code` in its own module; every code
/// string is unique across the project and listed in aem-pcr(8), ERRORS (ErrorCodeTests pins them).
public struct CodedError: AEMPCRError, Hashable {
    /// A stable identifier. The member's name is the string without its hyphens
    /// (`gzipTruncated` is `gzip-truncated`), so either finds the other.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        /// For the static members only: a code is declared once, where its layer's codes are.
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
    }

    public let code: Code
    /// The file (or device, or argument) concerned, where there is one.
    public let source: String?
    /// Byte offset in `source` (compressed offset for gzip errors), where known.
    public let offset: Int?
    /// 1-based line in `source`, for text inputs.
    public let line: Int?
    /// The physical address concerned, for reads of physical memory.
    public let address: UInt64?
    /// One line saying what is wrong and, where possible, what to do.
    public let reason: String

    public init(_ code: Code, source: String? = nil, offset: Int? = nil, line: Int? = nil, address: UInt64? = nil,
                _ reason: String) {
        self.code = code
        self.source = source
        self.offset = offset
        self.line = line
        self.address = address
        self.reason = reason
    }

    public var errorCode: String { code.rawValue }

    /// `file:12: reason` (a line), `file line 12 (byte 340): reason` (an event log's text line),
    /// `file at byte 340: reason`, `/dev/mem at physical 0xfed30300: reason`, or the reason alone.
    public var description: String {
        var at = ""
        if let line {
            at = offset.map { " line \(line) (byte \($0))" } ?? ":\(line)"
        } else if let offset {
            at = " at byte \(offset)"
        }
        if let address { at += " at physical " + hex0x(address, width: 1) }
        guard let source else { return at.isEmpty ? reason : at.dropFirst() + ": " + reason }
        return source + at + ": " + reason
    }

    public static func == (a: CodedError, b: CodedError) -> Bool { a.code == b.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

/// The library's codes: input files, tboot, GRUB, event logs, physical memory, PCR values,
/// policies and predictions.
extension CodedError.Code {
    // Input files (`RegularFile`, `FileReader`, GRUB's gunzip).
    /// The file does not exist.
    public static let fileNotFound = Self("file-not-found")
    /// The file cannot be opened (permission, a symbolic link where none is followed), or is a
    /// FIFO, device or socket (refused before it is opened).
    public static let fileNotReadable = Self("file-not-readable")
    /// A directory where a file is needed.
    public static let fileIsDirectory = Self("file-is-directory")
    /// A read failed, the file is larger than its kind of input may be, or the inflater ran out
    /// of memory.
    public static let fileReadFailed = Self("file-read-failed")
    /// A gzip stream ends early.
    public static let gzipTruncated = Self("gzip-truncated")
    /// A gzip stream that does not inflate.
    public static let gzipCorrupt = Self("gzip-corrupt")
    /// Bytes after the end of the gzip stream (GRUB's handling of them is not modelled).
    public static let gzipTrailingData = Self("gzip-trailing-data")
    /// An xz-compressed module: GRUB undoes it only with its xzio module, which this tool cannot see.
    public static let compressionUnsupported = Self("compression-unsupported")
    /// A module image of 4 GiB or more: GRUB cannot place it below 4 GiB.
    public static let imageTooLarge = Self("image-too-large")

    // tboot: its image, its policy, its options.
    /// The tboot image is not an ELF32 file.
    public static let tbootNotELF32 = Self("tboot-not-elf32")
    /// The tboot ELF's program headers or segments are malformed, or it holds no complete MLE.
    public static let tbootBadELF = Self("tboot-bad-elf")
    /// No MLE header in the tboot image.
    public static let tbootNoMLEHeader = Self("tboot-no-mle-header")
    /// The MLE header is cut off, or its ranges lie outside the image.
    public static let tbootBadMLEHeader = Self("tboot-bad-mle-header")
    /// A tboot command line longer than this tboot's slot for it.
    public static let tbootCmdlineTooLong = Self("tboot-cmdline-too-long")
    /// A tboot launch control policy file that does not parse.
    public static let policyMalformed = Self("policy-malformed")
    /// A bank, extpol or pcr_map that tboot cannot use here (SM3, a SHA-2 bank on TPM 1.2, the
    /// legacy mapping on TPM 2.0, a value tboot does not know) or that contradicts tboot's command line.
    public static let bankUnsupported = Self("bank-unsupported")
    /// The tboot policy has no entry for a module and halts: tboot would stop the boot.
    public static let policyNoEntryForModule = Self("policy-no-entry-for-module")

    // DRTM event logs and TXT heap dumps.
    /// The bytes end inside a record or header (a truncated file or dump).
    public static let logTruncated = Self("log-truncated")
    /// A size or offset field points past the end of the data it belongs to.
    public static let logSizePastEnd = Self("log-size-past-end")
    /// A TCG record carries a digest of an algorithm the Spec ID header did not declare.
    public static let logUndeclaredAlgorithm = Self("log-undeclared-algorithm")
    /// A count (digests, algorithms, descriptors, events) is larger than allowed.
    public static let logCountTooLarge = Self("log-count-too-large")
    /// A digest list that is empty or names one algorithm twice.
    public static let logBadDigestList = Self("log-bad-digest-list")
    /// A hash algorithm this tool does not know (no digest size for it).
    public static let logUnknownAlgorithm = Self("log-unknown-algorithm")
    /// The log header (TCG Spec ID event, TPM 1.2 container, per-algorithm header) is malformed.
    public static let logBadHeader = Self("log-bad-header")
    /// The content is none of the formats this tool reads.
    public static let logUnknownFormat = Self("log-unknown-format")
    /// The per-algorithm logs of the TPM 2.0 legacy format disagree about an event.
    public static let logLegacyMismatch = Self("log-legacy-mismatch")
    /// The same SINIT record appears twice in a row.
    public static let logDuplicateEvent = Self("log-duplicate-event")
    /// A record names a PCR outside 0–23 (e.g. 255).
    public static let logPCRInvalid = Self("log-pcr-invalid")
    /// A line of a `txt-stat` text log is not what the format requires at that place.
    public static let logTextMalformed = Self("log-text-malformed")
    /// A heap dump shorter than the heap its header declares.
    public static let heapTruncated = Self("heap-truncated")
    /// A heap size field that would not advance the walk (zero or smaller than its header), or
    /// too many elements.
    public static let heapLoop = Self("heap-loop")
    /// A heap section or element that extends past its container, or a pointer outside the heap.
    public static let heapOverrun = Self("heap-overrun")
    /// The heap holds no event-log pointer (OsSinitData too old, or no element 5, 7 or 8).
    public static let heapNoLog = Self("heap-no-log")
    /// A heap section whose fixed fields are malformed.
    public static let heapBadSection = Self("heap-bad-section")
    /// Xen's console text has no `SLAUNCH: reserving event log` line.
    public static let slaunchNoLogRange = Self("slaunch-no-log-range")
    /// That line does not give a range as Xen prints it.
    public static let slaunchLogRangeBad = Self("slaunch-log-range-bad")

    // Physical memory (`/dev/mem` or an image of it) and the TXT registers.
    /// The memory device (or image) does not exist.
    public static let memNotFound = Self("mem-not-found")
    /// Not allowed to open it: not root, no CAP_SYS_RAWIO, or kernel lockdown.
    public static let memPermissionDenied = Self("mem-permission-denied")
    /// The kernel refuses to show a range (CONFIG_STRICT_DEVMEM / CONFIG_IO_STRICT_DEVMEM).
    public static let memBlocked = Self("mem-blocked")
    /// A read failed or the image ends early.
    public static let memReadFailed = Self("mem-read-failed")
    /// The TXT heap registers read all FF or all zero: no TXT, so no measured launch.
    public static let txtAbsent = Self("txt-absent")
    /// TXT.HEAP.BASE / TXT.HEAP.SIZE hold values no TXT heap has.
    public static let txtHeapRegistersBad = Self("txt-heap-registers-bad")

    // GRUB's configuration.
    /// A grub.cfg line that does not parse.
    public static let grubSyntax = Self("grub-syntax")
    /// GRUB script this tool does not evaluate (loops, another file's menu …) or a limit passed
    /// (nesting, evaluation steps).
    public static let grubUnsupported = Self("grub-unsupported")
    /// No menu entry of the title, id or index given (or a submenu named as an entry, or the reverse).
    public static let grubEntryNotFound = Self("grub-entry-not-found")
    /// The entry does not boot tboot (no multiboot line, or its kernel is not tboot).
    public static let grubEntryWithoutTboot = Self("grub-entry-without-tboot")
    /// A loader line without a file name, or with a path GRUB cannot open.
    public static let grubBadLoaderLine = Self("grub-bad-loader-line")

    // Files of PCR values.
    /// A file of PCR values (YAML, JSON, TPM 1.2 sysfs text) or a saved prediction that does not parse.
    public static let pcrFileSyntax = Self("pcr-file-syntax")
    /// A PCR value that is not a hex digest of its bank's size.
    public static let pcrFileBadDigest = Self("pcr-file-bad-digest")
    /// A bank or PCR given twice.
    public static let pcrFileDuplicate = Self("pcr-file-duplicate")
    /// No PCR values in the file.
    public static let pcrFileEmpty = Self("pcr-file-empty")

    // The TPM 2.0 policy and the sealed object's files.
    /// A PCR selection that does not parse, repeats a bank, or names a PCR out of range or a bank
    /// that cannot be hashed.
    public static let policySelection = Self("policy-selection")
    /// No value for a selected PCR (or, for a TPM 1.2 set, not a 20-byte SHA-1 value).
    public static let policyMissingValue = Self("policy-missing-value")
    /// key.pub or key.pcrs of a sealed set is malformed.
    public static let sealedObjectInvalid = Self("sealed-object-invalid")

    // Predictions.
    /// The current log lacks an event the prediction needs (the MLE hash, tboot's event).
    public static let logIncomplete = Self("log-incomplete")
    /// An option, or the next boot's tboot command line, says otherwise than the current log (the
    /// TPM family, the PCR mapping …).
    public static let optionsContradictLog = Self("options-contradict-log")
    /// The current log does not verify against the PCR values (without `--force`).
    public static let logNotVerified = Self("log-not-verified")
    /// PCR values that do not come from a measured launch.
    public static let pcrNotLaunched = Self("pcr-not-launched")
    /// The PCR values lack a PCR or bank the log extends.
    public static let pcrsIncomplete = Self("pcrs-incomplete")
    /// The tboot policy given (or implied) is not the one the current log shows.
    public static let policyDiffersFromLog = Self("policy-differs-from-log")
    /// A `--replace` that cannot be applied: unknown role, missing file, no such module.
    public static let replacementInvalid = Self("replacement-invalid")
    /// A TrenchBoot Secure Launch log: `SecureLaunchPrediction` says per PCR why not.
    public static let secureLaunchNotPredicted = Self("secure-launch-not-predicted")

    // The command line, as any layer finds it.
    /// A usage error: an unknown command or option, a missing or invalid value, options that
    /// contradict each other, an output that cannot be written where it was named.
    public static let usage = Self("usage")
}

extension CodedError.Code {
    /// A code `RegularFile`, `FileReader` or the gunzip throws about an input file: what a caller
    /// that words a file's failure its own way catches, leaving the errors its `openError`
    /// closure makes alone.
    public var isFile: Bool { Self.fileCodes.contains(self) }

    static let fileCodes: Set<Self> = [.fileNotFound, .fileNotReadable, .fileIsDirectory, .fileReadFailed,
                                       .gzipTruncated, .gzipCorrupt, .gzipTrailingData, .compressionUnsupported,
                                       .imageTooLarge]
}
