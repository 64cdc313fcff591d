// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSeal
import Foundation
import Testing

/// Two seals at once share the staging name: while one run holds the parent directory's
/// lock, another commit (or check-boot's drop of `.prev`) is refused and changes nothing.
@Test func aSecondRunIsRefusedWhileTheSetIsBeingChanged() throws {
    let dir = try tempDir()
    let writer = SealedSetWriter(target: dir + "/tpm/aem")
    let old = [SealedFile(name: "key.pcrs", bytes: Array("sha256:13,17,18,19\n".utf8))]
    try writer.commit(old)

    // Another run's lock, as flock(1) or a second aem-pcr would hold it.
    let fd = open(dir + "/tpm", O_RDONLY | O_DIRECTORY)
    #expect(fd >= 0)
    defer { close(fd) }
    #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)

    let new = [SealedFile(name: "key.pcrs", bytes: Array("sha256:17\n".utf8))]
    #expect { try writer.commit(new) } throws: { ($0 as? CodedError)?.code == .sealIO }
    #expect { _ = try writer.dropPrevious() } throws: { ($0 as? CodedError)?.code == .sealIO }
    #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/tpm/aem/key.pcrs")) == Data("sha256:13,17,18,19\n".utf8))
    #expect(!FileManager.default.fileExists(atPath: writer.staging))

    // Released: the commit goes through.
    #expect(flock(fd, LOCK_UN) == 0)
    try writer.commit(new)
    #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/tpm/aem/key.pcrs")) == Data("sha256:17\n".utf8))
}
