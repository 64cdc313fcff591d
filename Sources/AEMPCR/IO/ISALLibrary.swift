// SPDX-License-Identifier: Apache-2.0
internal import CISAL
import Glibc

/// Intel ISA-L's igzip inflate (Debian: libisal2; Fedora and Qubes dom0: isa-l), loaded at run
/// time so that the binary also runs without it (`GzipInflater` then uses zlib). Loaded once per
/// process; every symbol is resolved at once, or the library is not used at all.
struct ISALLibrary: Sendable {
    typealias InflateInit = @convention(c) (UnsafeMutablePointer<inflate_state>?) -> Void
    typealias Inflate = @convention(c) (UnsafeMutablePointer<inflate_state>?) -> Int32
    typealias GzipHeaderInit = @convention(c) (UnsafeMutablePointer<isal_gzip_header>?) -> Void
    typealias ReadGzipHeader = @convention(c) (UnsafeMutablePointer<inflate_state>?,
                                               UnsafeMutablePointer<isal_gzip_header>?) -> Int32

    /// The soname of ISA-L 2.x. The structs this code allocates from the build's header,
    /// `inflate_state` and `isal_gzip_header`, have one layout in every 2.x release from 2.25
    /// (2019) to 2.32 (checked against their headers), as the unchanged soname promises.
    static let soname = "libisal.so.2"

    /// `isal_inflate_init`: resets a state for a new stream.
    let inflateInit: InflateInit
    /// `isal_inflate`: inflates from `next_in` into `next_out` as far as both allow.
    let inflate: Inflate
    /// `isal_gzip_header_init`: an empty header record (no buffers: fields are skipped).
    let gzipHeaderInit: GzipHeaderInit
    /// `isal_read_gzip_header`: consumes the gzip header, resuming where the last call stopped
    /// as long as the same header record is passed. (`isal_inflate` can parse the header itself
    /// only when it arrives whole in one call: intel/isa-l#224.)
    let readGzipHeader: ReadGzipHeader

    /// The library, or one sentence saying why it is not used.
    static let loaded: Result<ISALLibrary, LoadFailure> = load()

    struct LoadFailure: Error, Sendable {
        let reason: String
    }

    private static func load() -> Result<ISALLibrary, LoadFailure> {
        // RTLD_LOCAL: its symbols stay out of the global namespace. Never closed: the process
        // keeps the one copy.
        guard let handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL) else {
            let why = dlerror().map { String(cString: $0) } ?? "\(soname): not found"
            return .failure(LoadFailure(reason: "\(why); install libisal2 (Debian) or isa-l (Fedora, Qubes dom0)"))
        }
        let names = ["isal_inflate_init", "isal_inflate", "isal_gzip_header_init", "isal_read_gzip_header"]
        let symbols = names.map { dlsym(handle, $0) }
        let missing = zip(names, symbols).filter { $0.1 == nil }.map(\.0)
        guard missing.isEmpty, let s0 = symbols[0], let s1 = symbols[1], let s2 = symbols[2], let s3 = symbols[3] else {
            dlclose(handle)
            return .failure(LoadFailure(reason: "\(soname) lacks \(missing.joined(separator: ", ")); not ISA-L 2.x"))
        }
        return .success(ISALLibrary(inflateInit: unsafeBitCast(s0, to: InflateInit.self),
                                    inflate: unsafeBitCast(s1, to: Inflate.self),
                                    gzipHeaderInit: unsafeBitCast(s2, to: GzipHeaderInit.self),
                                    readGzipHeader: unsafeBitCast(s3, to: ReadGzipHeader.self)))
    }
}
