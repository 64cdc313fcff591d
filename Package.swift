// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "aem-pcr",
    platforms: [.macOS(.v13)],
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
        .target(name: "AEMPCR", dependencies: ["CZlib", "CLibcrypto"]),
        // Reads the machine (/dev/mem; later the TPM): kept out of the library.
        .target(name: "AEMPCRHardware", dependencies: ["AEMPCR"]),
        .executableTarget(name: "aem-pcr", dependencies: [
            "AEMPCR",
            "AEMPCRHardware",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "AEMPCRTests", dependencies: ["AEMPCR"]),
    ]
)
