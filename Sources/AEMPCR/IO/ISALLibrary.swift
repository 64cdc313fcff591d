import CISAL
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Intel ISA-L's igzip inflate (Debian: libisal2; Fedora and Qubes dom0: isa-l), loaded at run
/// time so that the binary also runs without it (`GzipInflater` then uses zlib). Loaded once per
/// process; every symbol is resolved at once, or the library is not used at all.
struct ISALLibrary: Sendable {
    typealias InflateInit = @convention(c) (UnsafeMutablePointer<inflate_state>?) -> Void
    typealias Inflate = @convention(c) (UnsafeMutablePointer<inflate_state>?) -> Int32

    /// The soname of ISA-L 2.x, whose `struct inflate_state` the installed header describes.
    static let soname = "libisal.so.2"

    /// `isal_inflate_init`: resets a state for a new stream.
    let inflateInit: InflateInit
    /// `isal_inflate`: inflates from `next_in` into `next_out` as far as both allow.
    let inflate: Inflate

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
        let names = ["isal_inflate_init", "isal_inflate"]
        let symbols = names.map { dlsym(handle, $0) }
        let missing = zip(names, symbols).filter { $0.1 == nil }.map(\.0)
        guard missing.isEmpty, let initSym = symbols[0], let inflateSym = symbols[1] else {
            dlclose(handle)
            return .failure(LoadFailure(reason: "\(soname) lacks \(missing.joined(separator: ", ")); not ISA-L 2.x"))
        }
        return .success(ISALLibrary(inflateInit: unsafeBitCast(initSym, to: InflateInit.self),
                                    inflate: unsafeBitCast(inflateSym, to: Inflate.self)))
    }
}
