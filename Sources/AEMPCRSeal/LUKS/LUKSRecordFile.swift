// SPDX-License-Identifier: Apache-2.0
// Where the LUKS header digests of a boot are kept (`LUKSHeaderRecord`): read back, or replaced
// as a whole. Digests only: nothing in it is secret, and a missing, stale or damaged record is
// only ignored (it is trusted when its fold equals the TPM's PCR13, never otherwise).
import AEMPCR
import AEMPCRSystem
import Glibc

public enum LUKSRecordFile {
    /// Beside notice's state, in aem-pcr's state directory.
    public static let defaultPath = "/var/lib/aem-pcr/luks-headers"

    /// The record at `path`; nil when there is none. One that cannot be read or parsed is
    /// `.unusable` with the reason (and is then replaced by the next write).
    public static func read(_ path: String) -> LUKSHeaderRecord.Parsed? {
        do {
            let bytes = try FileReader.readAll(path: path, limit: 1 << 16, noFollow: true)
            return LUKSHeaderRecord.parse(String(decoding: bytes, as: UTF8.self))
        } catch let e as CodedError where e.code == .fileNotFound {
            return nil
        } catch let e as CodedError {
            return .unusable(e.reason)
        } catch {
            return .unusable("\(error)")
        }
    }

    /// Replaces the record at `path` (complete or not at all; its directory made 0755 when
    /// missing, as notice makes the state directory). The error is one sentence naming the file.
    public static func write(_ record: LUKSHeaderRecord, to path: String) throws {
        let (dir, _) = Directory.split(path)
        if mkdir(dir, 0o755) != 0 && errno != EEXIST {
            throw CodedError(.sealIO, "cannot record the LUKS header digests in \(Escape.text(path)): \(Escape.text(dir)): \(Errno.current)")
        }
        do {
            try AtomicOutputFile.write(Array(record.render().utf8), to: path)
        } catch {
            throw CodedError(.sealIO, "cannot record the LUKS header digests: \(error)")
        }
    }
}
