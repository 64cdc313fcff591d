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
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // zlib's inflate, for GRUB's gunzip of modules (Debian: zlib1g-dev).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // The measurement library: computes and explains, never reads hardware or writes secrets.
        .target(name: "AEMPCR", dependencies: [
            "CZlib",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
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
