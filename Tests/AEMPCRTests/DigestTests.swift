// SPDX-License-Identifier: Apache-2.0
import Testing
@testable import AEMPCR

/// FIPS 180-4 example digests of "abc" (external constants, not produced by this code).
@Test func fipsVectorsForAbc() {
    var h = MultiHasher(HashAlgorithm.computable)
    h.update(Array("abc".utf8))
    let d = h.finalize()
    #expect(d[.sha1]?.hex == "a9993e364706816aba3e25717850c26c9cd0d89d")
    #expect(d[.sha256]?.hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(d[.sha384]?.hex == "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7")
    #expect(d[.sha512]?.hex == "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
}

@Test func chunkedUpdateEqualsOneShot() {
    let data = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    var a = MultiHasher([.sha256, .sha1])
    a.update(data)
    var b = MultiHasher([.sha256, .sha1])
    for chunk in stride(from: 0, to: data.count, by: 4097) { b.update(Array(data[chunk..<min(chunk + 4097, data.count)])) }
    #expect(a.finalize() == b.finalize())
}

/// Extend from the DRTM initial value: SHA1(0^20 || SHA1("abc")), the constant computed by
/// python3: hashlib.sha1(bytes(20) + hashlib.sha1(b"abc").digest()).hexdigest()).
@Test func extendFromZeros() {
    let m = MultiHasher.hash(.sha1, Array("abc".utf8))
    var pcrs = PCRValues()
    pcrs.extend(18, with: m)
    #expect(pcrs[.sha1, 18]?.hex == "ccd5bd41458de644ac34a2478b58ff819bef5acf")
}

@Test func digestConstructionChecksSize() {
    #expect(Digest(.sha1, hex: "00") == nil)
    #expect(Digest(.sha256, hex: String(repeating: "ab", count: 32)) != nil)
    #expect(Digest(.sha1, hex: "zz" + String(repeating: "00", count: 19)) == nil)
    #expect(Digest(.sha1, hex: "a9:99:3e:36:47:06:81:6a:ba:3e:25:71:78:50:c2:6c:9c:d0:d8:9d")?.hex == "a9993e364706816aba3e25717850c26c9cd0d89d")
    #expect(Digest.ones(.sha1).isAllOnes && Digest.zeros(.sha256).isAllZero)
}

@Test func bankNames() {
    #expect(HashAlgorithm(name: "SHA-256") == .sha256)
    #expect(HashAlgorithm(name: "sm3_256") == .sm3_256)
    #expect(HashAlgorithm(name: "md5") == nil)
    #expect(!HashAlgorithm.sm3_256.isComputable)
}

/// A copied hasher is a value: updating the copy leaves the original alone (the libcrypto
/// contexts are copied on write), and `finalize` leaves the state as it was. Expected digests
/// from python3: hashlib.sha1(b"abx"), hashlib.sha256(b"abx"), and the same of b"abcd".
@Test func copiesAreIndependent() {
    var a = MultiHasher([.sha1, .sha256])
    a.update(Array("ab".utf8))
    var b = a
    b.update(Array("x".utf8))
    a.update(Array("c".utf8))
    let c = a
    let abc = a.finalize()
    #expect(abc[.sha1]?.hex == "a9993e364706816aba3e25717850c26c9cd0d89d")
    #expect(abc[.sha256]?.hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(b.finalize()[.sha1]?.hex == "de5e559fd720775b55ab5e399e93c4faf17a2437")
    #expect(b.finalize()[.sha256]?.hex == "b2bdab4230154046ad0b7dfa830a9260caa5bd6ae230e582a2244ab4bf0b4ca5")
    a.update(Array("d".utf8))
    #expect(a.finalize()[.sha1]?.hex == "81fe8bfe87576c3ecb22426f8e57847382917acf")
    #expect(a.finalize()[.sha256]?.hex == "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589")
    // The copy taken before "d" still ends at "abc".
    #expect(c.finalize() == abc)
}
