// SPDX-License-Identifier: Apache-2.0
/// A file to boot in place of one a boot entry names (`--replace ROLE=FILE`): the new Xen,
/// kernel or initramfs taken from a package before it is installed. The entry's command lines
/// stay as they are.
public struct BootReplacement: Sendable, Equatable {
    public enum Role: Sendable, Equatable {
        /// The `multiboot`/`multiboot2` image.
        case tboot
        /// The entry's module line number `index`, counted from 0 in the entry's order.
        case module(index: Int)
    }

    public var role: Role
    public var path: String
    /// The option's value as given, for messages.
    public var argument: String

    /// Names a module role takes: Xen, the dom0 kernel and the initramfs are the first three
    /// module lines of a tboot entry (AEM lists the SINIT modules after them).
    public static let moduleRoles: [(name: String, index: Int)] = [("xen", 0), ("kernel", 1), ("initramfs", 2)]

    public init(role: Role, path: String) {
        self.role = role
        self.path = path
        self.argument = "\(role.name)=\(path)"
    }

    /// Parses `ROLE=FILE`: ROLE is tboot, xen, kernel, initramfs or a module index.
    public init(parsing argument: String) throws {
        guard let eq = argument.firstIndex(of: "="), eq != argument.startIndex else {
            throw CodedError.replacement(argument, "not ROLE=FILE (ROLE: tboot, xen, kernel, initramfs or a module index)")
        }
        let name = String(argument[..<eq])
        let path = String(argument[argument.index(after: eq)...])
        if name == "tboot" {
            role = .tboot
        } else if let r = BootReplacement.moduleRoles.first(where: { $0.name == name }) {
            role = .module(index: r.index)
        } else if let n = Int(name), n >= 0, name.allSatisfy(\.isASCII) {
            role = .module(index: n)
        } else {
            throw CodedError.replacement(argument, "unknown role '\(printable(name))'; use tboot, xen, kernel, initramfs or a module index")
        }
        guard !path.isEmpty else { throw CodedError.replacement(argument, "names no file after '='") }
        self.path = path
        self.argument = argument
    }
}

extension BootReplacement.Role {
    public var name: String {
        switch self {
        case .tboot: return "tboot"
        case .module(let i): return BootReplacement.moduleRoles.first { $0.index == i }?.name ?? String(i)
        }
    }
}

extension BootSpec {
    /// This boot with the given files in place of the ones it names; command lines, `--nounzip`
    /// and module order kept. Each replacement must be a readable regular file and name a module
    /// the boot has; a role given twice is refused.
    public func replacing(_ replacements: [BootReplacement]) throws -> BootSpec {
        var spec = self
        var seen = [BootReplacement.Role]()
        for r in replacements {
            if seen.contains(r.role) {
                throw CodedError.replacement(r.argument, "\(r.role.name) is replaced twice")
            }
            seen.append(r.role)
            do {
                _ = try FileReader(path: r.path, chunkSize: 1)
            } catch let e as CodedError where e.code.isFile {
                throw CodedError.replacement(r.argument, "\(printable(r.path)): \(e.reason)")
            }
            switch r.role {
            case .tboot:
                spec.tbootPath = r.path
            case .module(let i):
                guard i < spec.modules.count else {
                    let has = spec.modules.count == 1 ? "1 module" : "\(spec.modules.count) modules"
                    throw CodedError.replacement(r.argument, "the boot has \(has) (\(spec.origin)), no module \(i)")
                }
                // "kernel" means module 1, as AEM orders its entries; both files must be Linux
                // boot images, else the role named another file than the user meant.
                if r.argument.hasPrefix("kernel=") {
                    for (path, what) in [(spec.modules[i].path, "module 1 of the entry"), (r.path, "the replacement")]
                    where !BootReplacement.isLinuxKernel(path: path) {
                        throw CodedError.replacement(r.argument, "\(what), \(printable(path)), is not a Linux kernel (no 'HdrS' boot header at byte 0x202): name the kernel's module by its index (--replace N=FILE)")
                    }
                }
                spec.modules[i].path = r.path
                spec.modules[i].origin = "--replace \(r.role.name), for \(spec.modules[i].origin)"
            }
        }
        if !replacements.isEmpty {
            spec.origin += ", with " + replacements.map { "\($0.role.name) replaced" }.joined(separator: ", ")
        }
        return spec
    }
}

extension BootReplacement {
    /// A Linux x86 boot image: the setup header's magic "HdrS" at byte 0x202
    /// (Documentation/arch/x86/boot.rst). Unreadable files answer false.
    static func isLinuxKernel(path: String) -> Bool {
        guard let r = try? FileReader(path: path, chunkSize: 0x206) else { return false }
        var head = [UInt8]()
        while head.count < 0x206, let chunk = try? r.next(), !chunk.isEmpty { head += chunk }
        return head.count >= 0x206 && Array(head[0x202..<0x206]) == Array("HdrS".utf8)
    }
}

extension CodedError {
    /// `--replace ARG: reason`.
    static func replacement(_ argument: String, _ reason: String) -> CodedError {
        CodedError(.replacementInvalid, source: "--replace " + printable(argument), reason)
    }
}
