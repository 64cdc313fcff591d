// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSystem
import Glibc

/// Xen's console ring as `xl dmesg` prints it in dom0 (as root): where a TrenchBoot boot's Xen
/// said which physical range holds the DRTM log (`SLAUNCH: reserving event log`). The command
/// runs with this process's environment, its standard input and error on /dev/null.
public enum XenConsole {
    /// What running the command gave.
    public enum Outcome: Equatable, Sendable {
        /// The command's standard output (it exited 0).
        case text(String)
        /// The command is not on PATH: not Xen's dom0 (or Xen's tools not installed).
        case notFound
        /// It could not be started (EACCES: on PATH but not executable by this user, or a PATH
        /// directory it may not search).
        case cannotRun(String)
        /// It ran and exited with this status, or was ended by this signal.
        case failed(status: Int32?, signal: Int32?)
    }

    /// The most text kept: `xl dmesg` prints Xen's whole ring, 16 KiB to a few MiB; the
    /// `SLAUNCH:` line is among the first.
    public static let maxText = 16 << 20

    public static let defaultCommand = ["xl", "dmesg"]

    /// Runs `command` (found on PATH) and returns what it printed.
    public static func read(command: [String] = defaultCommand) throws -> Outcome {
        guard let name = command.first else { return .notFound }
        var fds: [Int32] = [-1, -1]
        // Close-on-exec, so that the child holds only the write end it gets as its output.
        guard pipe(&fds) == 0 else {
            throw CodedError(.memReadFailed, "cannot run '\(command.joined(separator: " "))' (pipe: \(Errno.current))")
        }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, name, &actions, nil, argv, environ)
        close(fds[1])
        guard spawned == 0 else {
            close(fds[0])
            if spawned == ENOENT || spawned == ENOTDIR { return .notFound }
            return .cannotRun("\(Errno(spawned))")
        }
        // Read to the end (keeping the first maxText bytes) so the command never blocks on a full pipe.
        var out = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if out.count < maxText { out += buffer[0..<min(n, maxText - out.count)] }
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7F, code = (status >> 8) & 0xFF
        if signal != 0 { return .failed(status: nil, signal: signal) }
        if code != 0 { return .failed(status: code, signal: nil) }
        return .text(String(decoding: out, as: UTF8.self))
    }
}
