// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSeal
import Foundation
import Synchronization
import Testing

/// Issue 19, item 2: what `seal` and `check-boot` remove. Removal walks by descriptor and
/// never through a symbolic link planted mid-walk; it removes only this tool's own staging
/// names and the `LABEL.prev-<time>` directories it made (with their record); a user's entry
/// inside the set stays; a directory another user can write is refused before anything
/// changes. The expected outcomes are what the file system holds afterwards (read back with
/// Foundation), never what the writer reports about itself.
@Suite(.serialized) struct SealedSetRemovalTests {
    static let setNames = ["key.pub", "key.priv", "key.pcrs", "secret.txt.sealed2", "secret.key.sealed2", "aem-pcr-prediction.json"]

    static func set(_ tag: Int) -> [SealedFile] {
        setNames.map { SealedFile(name: $0, bytes: Array("\($0) of set \(tag)\n".utf8)) }
    }

    /// A root-only directory of files no removal may touch; names like a set's, so that a
    /// removal redirected into it finds them.
    static func victim(_ dir: String, count: Int) throws -> String {
        let v = dir + "/victim"
        try FileManager.default.createDirectory(atPath: v, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        for name in setNames { try write(Array("precious \(name)\n".utf8), to: v + "/" + name) }
        for i in 0..<(count - setNames.count) { try write(Array("precious \(i)\n".utf8), to: v + "/f\(i)") }
        return v
    }

    static func count(_ dir: String) -> Int { (try? FileManager.default.contentsOfDirectory(atPath: dir).count) ?? -1 }

    static func names(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

    /// Another process's work, as a thread: swaps the staging directory and every `.prev`
    /// directory for a symbolic link to the victim and back, as fast as it can, and plants a
    /// link to the victim inside them.
    final class Attacker: Sendable {
        let stop = Atomic<Bool>(false)
        let swaps = Atomic<Int>(0)
        let parent: String, victim: String

        init(parent: String, victim: String) {
            self.parent = parent
            self.victim = victim
        }

        func names() -> [String] {
            guard let d = opendir(parent) else { return [] }
            defer { closedir(d) }
            var out = [String]()
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name.hasPrefix("aem.prev-") || name == ".aem.aem-pcr-staging" { out.append(name) }
            }
            return out
        }

        func run() {
            var round = 0
            while !stop.load(ordering: .relaxed) {
                round += 1
                for name in names() {
                    let p = parent + "/" + name, aside = parent + "/aside" + name
                    if round % 2 == 0 {
                        _ = symlink(victim, p + "/planted")
                        continue
                    }
                    guard rename(p, aside) == 0 else { continue }
                    if symlink(victim, p) == 0 {
                        swaps.add(1, ordering: .relaxed)
                        for _ in 0..<200 { sched_yield() }
                        _ = unlink(p)
                    }
                    if rename(aside, p) != 0 { _ = try? FileManager.default.removeItem(atPath: aside) }
                }
            }
        }

        /// What a swap interrupted by the stop left: the directory back under its name.
        func restore() {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where name.hasPrefix("aside") {
                let p = parent + "/" + String(name.dropFirst("aside".count))
                var st = stat()
                if lstat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK { _ = unlink(p) }
                if rename(parent + "/" + name, p) != 0 { _ = try? FileManager.default.removeItem(atPath: parent + "/" + name) }
            }
        }
    }

    /// Symbolic links to a root-only directory planted in place of the staging directory and
    /// of `.prev` directories, and inside them, while `seal` (commit) and `check-boot`
    /// (dropPrevious) remove them: every file of that directory survives. Before removal went
    /// by descriptor, a path rebuilt and followed again deleted them (issue 19: 85–2,501 files
    /// in 1–5 tries).
    @Test func symlinksPlantedMidWalkNeverLeadOutside() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let victim = try Self.victim(dir, count: 400)
        try FileManager.default.createDirectory(atPath: dir + "/tpm", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        let writer = SealedSetWriter(target: dir + "/tpm/aem")
        try writer.commit(Self.set(0))
        let attacker = Attacker(parent: dir + "/tpm", victim: victim)
        let thread = Thread { attacker.run() }
        thread.start()
        // 250 rounds, and more (up to 2,000) while the attacker has swapped too few times: on a
        // loaded machine its thread can be starved (92 swaps in 250 rounds seen in .ci/run).
        var rounds = 0
        while rounds < 250 || (attacker.swaps.load(ordering: .relaxed) <= 100 && rounds < 2000) {
            rounds += 1
            let round = rounds
            _ = try? writer.commit(Self.set(round))
            _ = try? writer.dropPrevious()
            if Self.count(victim) != 400 { break }
        }
        attacker.stop.store(true, ordering: .relaxed)
        while !thread.isFinished { usleep(1000) }
        attacker.restore()
        #expect(attacker.swaps.load(ordering: .relaxed) > 100, "the race was not run")
        #expect(Self.count(victim) == 400, "files outside the set were deleted (round \(rounds)): \(400 - Self.count(victim)) gone")
        for name in Self.setNames {
            #expect((try? Data(contentsOf: URL(fileURLWithPath: victim + "/" + name))) == Data("precious \(name)\n".utf8))
        }
    }

    /// `check-boot --label aem` drops only `aem.prev-<time>` directories `seal` made for the
    /// label aem: another label's set (`aem.prev-usb2`), a user's `aem.prev-notes`, and a
    /// directory with the right name but no record of aem-pcr stay, file for file.
    @Test func dropPreviousRemovesOnlyItsOwnPreviousSets() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tpm = dir + "/tpm"
        let writer = SealedSetWriter(target: tpm + "/aem")
        try writer.commit(Self.set(1))
        // a file of any name in the set is kept by a seal, and so in the .prev it makes
        try write(Array("a user's file\n".utf8), to: tpm + "/aem/notes.txt~")
        try writer.commit(Self.set(2))
        let ours = Self.names(tpm).filter { $0.hasPrefix("aem.prev-") }
        #expect(ours.count == 1 && Self.names(tpm + "/" + ours[0]).contains("notes.txt~"))
        #expect(ours.count == 1)
        let strangers = ["aem.prev-usb2", "aem.prev-notes", "aem.prev-20261130T042700Z", "aem.prev-20261130T042700Z-x",
                         "aem2.prev-20261130T042700Z"]
        for s in strangers {
            try FileManager.default.createDirectory(atPath: tpm + "/" + s, withIntermediateDirectories: false)
            try write(Array("keep me\n".utf8), to: tpm + "/" + s + "/key.pub")
            try write(Array("notes\n".utf8), to: tpm + "/" + s + "/notes.txt")
        }
        // The record of another label inside a directory named as this label's.
        try FileManager.default.createDirectory(atPath: tpm + "/aem.prev-20261201T000000Z", withIntermediateDirectories: false)
        try write(Array("key.pub\n".utf8), to: tpm + "/aem.prev-20261201T000000Z/key.pub")
        try write(Array("aem-pcr previous set of aem2\nkey.pub\n".utf8), to: tpm + "/aem.prev-20261201T000000Z/.aem-pcr-prev")

        let drop = try writer.dropPrevious()
        let left = Self.names(tpm)
        for s in strangers {
            #expect(left.contains(s), "\(s) was removed")
            #expect(Self.names(tpm + "/" + s) == ["key.pub", "notes.txt"], "\(s) lost files")
        }
        #expect(Self.names(tpm + "/aem.prev-20261201T000000Z") == [".aem-pcr-prev", "key.pub"])
        #expect(!left.contains(ours[0]), "the previous set seal made is still there")
        #expect((try? Data(contentsOf: URL(fileURLWithPath: tpm + "/aem/notes.txt~"))) == Data("a user's file\n".utf8))
        // said: which were kept and why
        #expect(drop.removed == [tpm + "/" + ours[0]])
        #expect(drop.kept.map(\.path).sorted() == [tpm + "/aem.prev-20261130T042700Z", tpm + "/aem.prev-20261201T000000Z"])
        #expect(drop.kept.allSatisfy { $0.reason.contains("record") }, "\(drop.kept)")
    }

    /// What a user keeps inside /var/lib/tpm/aem besides the set's files (a subdirectory, a
    /// symbolic link, a FIFO) stays in the set through a seal and a check-boot, untouched.
    @Test func entriesThatAreNotFilesOfTheSetStayInIt() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = dir + "/tpm/aem"
        let writer = SealedSetWriter(target: target)
        try writer.commit(Self.set(1))
        try FileManager.default.createDirectory(atPath: target + "/notes", withIntermediateDirectories: false)
        try write(Array("my notes\n".utf8), to: target + "/notes/today.txt")
        #expect(symlink("notes/today.txt", target + "/link") == 0)
        #expect(mkfifo(target + "/fifo", 0o600) == 0)
        var before = stat()
        #expect(stat(target + "/notes", &before) == 0)

        let plan = try writer.plan(Self.set(2))
        #expect(plan.filter { $0.1 == .left }.map(\.0).sorted() == ["fifo", "link", "notes"])
        try writer.commit(Self.set(2))
        _ = try writer.dropPrevious()

        #expect(Self.names(target) == (Self.setNames + ["fifo", "link", "notes"]).sorted())
        #expect(Self.names(target + "/notes") == ["today.txt"])
        #expect((try? Data(contentsOf: URL(fileURLWithPath: target + "/notes/today.txt"))) == Data("my notes\n".utf8))
        var after = stat()
        #expect(stat(target + "/notes", &after) == 0 && after.st_ino == before.st_ino, "notes is not the user's directory")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: target + "/link")) == "notes/today.txt")
        var fifo = stat()
        #expect(lstat(target + "/fifo", &fifo) == 0 && (fifo.st_mode & S_IFMT) == S_IFIFO)
        #expect(try Data(contentsOf: URL(fileURLWithPath: target + "/key.pcrs")) == Data("key.pcrs of set 2\n".utf8))
        #expect(Self.names(dir + "/tpm") == ["aem"])
    }

    /// The layout AEM 4.2 makes itself: trousers-changer's `install -d -m 700 -o tss -g tss
    /// /var/lib/tpms/ID` (done again at every AEM boot), the set made below it by root. A seal
    /// there is written and its previous set dropped; the same directory writable by tss's
    /// group, or owned by another system user, is still refused. The uid comes from
    /// `id -u tss` (trousers' account), not from the code under test.
    @Test func theTPMDirectoryAEMGivesToTssIsAccepted() throws {
        let id = try run("/usr/bin/id", ["-u", "tss"])
        guard id.status == 0, let tss = uid_t(id.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else { return }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tpms = dir + "/tpms", tpm = tpms + "/0a1b2c"
        #expect(mkdir(tpms, 0o755) == 0 && mkdir(tpm, 0o700) == 0 && chown(tpm, tss, tss) == 0)
        let writer = SealedSetWriter(target: tpm + "/aem")
        try writer.commit(Self.set(1))
        try writer.commit(Self.set(2))
        #expect((try? Data(contentsOf: URL(fileURLWithPath: tpm + "/aem/key.pcrs"))) == Data("key.pcrs of set 2\n".utf8))
        _ = try writer.dropPrevious()
        #expect(Self.names(tpm) == ["aem"], "\(Self.names(tpm))")
        for (change, says) in [({ chmod(tpm, 0o770) }, "can be written by its group"), ({ chown(tpm, 4242, tss) }, "is owned by uid 4242, not by root or tss")] as [(() -> Int32, String)] {
            _ = change()
            var message: String? = nil
            do { try writer.commit(Self.set(3)) } catch let e as CodedError { message = e.reason } catch { message = "\(error)" }
            #expect(message?.contains(tpm + " " + says) == true, "\(message ?? "not refused")")
            _ = chmod(tpm, 0o700); _ = chown(tpm, tss, tss)
        }
    }

    /// A parent or set directory another user can write (group- or other-writable, sticky or
    /// not; owned by another user) is refused with one line naming it, before anything is
    /// changed; so is a symbolic link in place of the set.
    @Test func aDirectoryAnotherUserCanWriteIsRefused() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tpm = dir + "/tpm"
        let writer = SealedSetWriter(target: tpm + "/aem")
        try writer.commit(Self.set(1))
        try writer.commit(Self.set(2))
        let before = Self.names(tpm)
        func refusal(_ path: String, _ change: () -> Void, _ undo: () -> Void, _ says: String) {
            change()
            defer { undo() }
            for run in ["commit", "dropPrevious"] {
                var message: String? = nil
                do {
                    if run == "commit" { try writer.commit(Self.set(3)) } else { _ = try writer.dropPrevious() }
                } catch let e as CodedError {
                    message = e.reason
                } catch {
                    message = "\(error)"
                }
                #expect(message?.contains(path + " " + says) == true && message?.contains("\n") == false, "\(run), \(path): \(message ?? "not refused")")
                #expect(Self.names(tpm) == before, "\(run), \(path): changed")
                #expect((try? Data(contentsOf: URL(fileURLWithPath: tpm + "/aem/key.pcrs"))) == Data("key.pcrs of set 2\n".utf8))
            }
        }
        for mode in [0o777, 0o775, 0o1777, 0o757] as [mode_t] {
            refusal(tpm, { chmod(tpm, mode) }, { chmod(tpm, 0o755) }, mode & 0o002 != 0 ? "can be written by every user" : "can be written by its group")
        }
        refusal(tpm + "/aem", { chmod(tpm + "/aem", 0o770) }, { chmod(tpm + "/aem", 0o700) }, "can be written by its group")
        refusal(tpm, { chown(tpm, 4242, 0) }, { chown(tpm, 0, 0) }, "is owned by uid 4242")
        refusal(tpm + "/aem", { chown(tpm + "/aem", 4242, 4242) }, { chown(tpm + "/aem", 0, 0) }, "is owned by uid 4242")
        // a symbolic link in place of the set or of its parent: refused, nothing written through it
        try FileManager.default.createDirectory(atPath: dir + "/other", withIntermediateDirectories: false)
        #expect(symlink(tpm + "/aem", dir + "/other/aem") == 0 && symlink(tpm, dir + "/linked") == 0)
        for (w, link) in [(SealedSetWriter(target: dir + "/other/aem"), dir + "/other/aem"), (SealedSetWriter(target: dir + "/linked/aem"), dir + "/linked")] {
            var message: String? = nil
            do { try w.commit(Self.set(4)) } catch let e as CodedError { message = e.reason } catch { message = "\(error)" }
            #expect(message?.contains(link + " is a symbolic link") == true, "\(message ?? "not refused")")
            #expect(Self.names(tpm) == before)
            #expect((try? Data(contentsOf: URL(fileURLWithPath: tpm + "/aem/key.pcrs"))) == Data("key.pcrs of set 2\n".utf8))
        }
        // dry run: said, not thrown
        chmod(tpm, 0o777)
        #expect(writer.unsafeDirectory()?.contains(tpm + " can be written by every user") == true)
        chmod(tpm, 0o755)
        #expect(writer.unsafeDirectory() == nil)
    }
}
