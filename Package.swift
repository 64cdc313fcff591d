// swift-tools-version:6.0
// SPDX-License-Identifier: Apache-2.0
import PackageDescription

let package = Package(
    name: "aem-pcr",
    products: [
        .executable(name: "aem-pcr", targets: ["aem-pcr"]),
        .library(name: "AEMPCR", targets: ["AEMPCR"]),
    ],
    dependencies: [
        // exact: the one dependency, pinned so that every build resolves the same source.
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        // zlib's inflate, for GRUB's gunzip of modules (Debian: zlib1g-dev).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // The measurement library: computes and explains, never reads hardware or writes secrets.
        // The system's libcrypto (OpenSSL 3, Debian: libssl-dev) for the hashes: the library
        // tpm2-tss already links, instead of a second, vendored copy (swift-crypto's BoringSSL).
        .systemLibrary(name: "CLibcrypto", path: "Sources/CLibcrypto", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        // Intel ISA-L's igzip (Debian: libisal-dev; Fedora: isa-l-devel), header only: the library
        // loads libisal.so.2 at run time and falls back to zlib, so the binary never needs it.
        .systemLibrary(name: "CISAL", path: "Sources/CISAL",
                       providers: [.apt(["libisal-dev"]), .yum(["isa-l-devel"])]),
        // The POSIX layer every target's files go through: errno messages, the atomic file and
        // set of files, `mkdir -p`, directory listing, threads. Linux (glibc) only.
        .target(name: "AEMPCRSystem"),
        .target(name: "AEMPCR", dependencies: ["AEMPCRSystem", "CZlib", "CISAL", "CLibcrypto"]),
        // Reads the machine (/dev/mem): kept out of the library.
        .target(name: "AEMPCRHardware", dependencies: ["AEMPCR", "AEMPCRSystem"]),
        // tpm2-tss (Debian: libtss2-dev): ESYS, the TCTI loader, marshaling, response codes.
        .systemLibrary(name: "CTSS2", path: "Sources/CTSS2", pkgConfig: "tss2-esys",
                       providers: [.apt(["libtss2-dev"])]),
        // The live TPM (TPM 2.0 through tpm2-tss, TPM 1.2 PCRs from sysfs): the only importer of CTSS2.
        .target(name: "AEMPCRTPM", dependencies: ["AEMPCR", "AEMPCRSystem", "CTSS2"]),
        // trousers' TSS_UUID for a by-value argument; header only: libtspi itself is loaded at run
        // time, so neither libtspi-dev nor libtspi1 is needed to build or to predict.
        .systemLibrary(name: "CTspi", path: "Sources/CTspi"),
        // prctl (variadic) and madvise(MADV_DONTDUMP), for a process that holds secrets; header only.
        .systemLibrary(name: "CLinux", path: "Sources/CLinux"),
        // Sealing AEM's secrets to predicted values: AEM's files, TPM 2.0 and TPM 1.2 (trousers);
        // the current boot (its log, from a file or /dev/mem, and one TPM session per command).
        .target(name: "AEMPCRSeal", dependencies: ["AEMPCR", "AEMPCRSystem", "AEMPCRHardware", "AEMPCRTPM", "CLibcrypto", "CTspi", "CLinux"]),
        // The command line captured before main (glibc's .init_array arguments): the Swift
        // runtime reads it from /proc/self/cmdline, absent in a rescue chroot.
        .target(name: "CArguments", path: "Sources/CArguments"),
        .executableTarget(name: "aem-pcr", dependencies: [
            "AEMPCR",
            "AEMPCRSystem",
            "CArguments",
            "AEMPCRHardware",
            "AEMPCRTPM",
            "AEMPCRSeal",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "AEMPCRTests", dependencies: ["AEMPCR", "AEMPCRSystem", "AEMPCRTPM", "AEMPCRSeal"]),
    ]
)
