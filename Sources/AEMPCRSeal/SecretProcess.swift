// SPDX-License-Identifier: Apache-2.0
import AEMPCR
import AEMPCRSystem
internal import CLinux
import Glibc

/// What `seal` does to the process before it reads a secret (the SRK password, AEM's secrets,
/// the sealing key and its hex): no core dump and no ptrace or /proc/PID/mem by another
/// process of the same user, whatever happens afterwards.
public enum SecretProcess {
    /// `prctl(PR_SET_DUMPABLE, 0)`: the kernel writes no core for this process (unless an
    /// administrator set `fs.suid_dumpable` to 2, which then writes it for root only), and a
    /// process of the same user can no longer attach to it or read its memory; and
    /// `RLIMIT_CORE` 0, so that a core handler that honours the limit writes nothing either.
    public static func harden() throws {
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        guard setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &none) == 0 else {
            throw CodedError(.sealIO, "cannot forbid core dumps (setrlimit RLIMIT_CORE: \(Errno.current)); nothing is sealed")
        }
        guard aempcr_set_dumpable(0) == 0, aempcr_get_dumpable() == 0 else {
            throw CodedError(.sealIO, "cannot make the process undumpable (prctl PR_SET_DUMPABLE: \(Errno.current)); nothing is sealed")
        }
    }

    /// Whether the process may dump core (`prctl(PR_GET_DUMPABLE)`).
    public static var isDumpable: Bool { aempcr_get_dumpable() != 0 }
}

/// Turns the terminal's echo back on when SIGINT, SIGTERM, SIGHUP or SIGTSTP arrives while a
/// password is read with echo off (as OpenBSD's `readpassphrase` does), then lets the signal do
/// what it would have done: end the process, or stop it (SIGTSTP) — and, once continued, turn
/// echo off again. The handler is process-wide, so it runs whichever thread the signal reaches
/// (the TPM watchdog's thread may exist). A signal that was ignored (`nohup`) stays ignored.
final class EchoGuard {
    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP, SIGTSTP]
    private var previous: [(Int32, sigaction)] = []

    init(fd: Int32, normal: termios, quiet: termios) {
        // Set before the handler is installed; the handler only reads it.
        echoGuardState.pointee = EchoGuardState(fd: fd, normal: normal, quiet: quiet)
        for sig in EchoGuard.signals {
            var old = sigaction()
            guard sigaction(sig, nil, &old) == 0 else { continue }
            if let h = old.__sigaction_handler.sa_handler, unsafeBitCast(h, to: Int.self) == 1 { continue }  // SIG_IGN
            var action = sigaction()
            action.__sigaction_handler.sa_handler = echoGuardHandler
            sigemptyset(&action.sa_mask)
            // SA_NODEFER: the handler's raise() acts at once, inside it (see echoGuardHandler).
            action.sa_flags = Int32(SA_NODEFER)
            if sigaction(sig, &action, nil) == 0 { previous.append((sig, old)) }
        }
    }

    /// Puts the previous handlers back (after echo is restored).
    func remove() {
        for (sig, old) in previous {
            var o = old
            _ = sigaction(sig, &o, nil)
        }
        previous = []
    }
}

struct EchoGuardState {
    var fd: Int32 = -1
    var normal = termios()
    var quiet = termios()
}

/// The handler's state, allocated once and written before any handler is installed; the
/// handler reads it through this pointer and calls only async-signal-safe functions
/// (tcsetattr, signal, raise).
nonisolated(unsafe) let echoGuardState: UnsafeMutablePointer<EchoGuardState> = {
    let p = UnsafeMutablePointer<EchoGuardState>.allocate(capacity: 1)
    p.initialize(to: EchoGuardState())
    return p
}()

private func echoGuardHandler(_ sig: Int32) {
    let saved = errno
    let s = echoGuardState
    _ = tcsetattr(s.pointee.fd, TCSANOW, &s.pointee.normal)
    // The default action, now: the process ends here, or (SIGTSTP) stops until SIGCONT.
    var dfl = sigaction()
    dfl.__sigaction_handler.sa_handler = nil  // SIG_DFL
    sigemptyset(&dfl.sa_mask)
    var mine = sigaction()
    _ = sigaction(sig, &dfl, &mine)
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, sig)
    _ = pthread_sigmask(SIG_UNBLOCK, &set, nil)
    raise(sig)
    // Continued after a stop: the handler back, echo off again, the read goes on.
    _ = sigaction(sig, &mine, nil)
    _ = tcsetattr(s.pointee.fd, TCSANOW, &s.pointee.quiet)
    errno = saved
}
