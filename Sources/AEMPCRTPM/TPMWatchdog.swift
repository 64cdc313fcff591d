// SPDX-License-Identifier: Apache-2.0
import AEMPCRSystem
import Glibc

/// A bound on every wait for a TPM. tpm2-tss's synchronous `Esys_*` calls wait for the answer
/// without end (they set the ESYS timeout to -1 around their `_Finish` loop), the device
/// TCTI's `write` blocks in the kernel, a TCTI's `connect` and partial reads block, and
/// trousers waits on tcsd without a timeout: none of them can be bounded from outside the call
/// and still be returned from. So the bound ends the process instead: a watchdog thread, armed
/// before each TPM call and disarmed after it, writes a line prepared when the call began and
/// `_exit`s with the status given, once a call has waited `seconds`. Nothing is written to
/// disk before the TPM calls of `seal` end, so nothing is left half done.
///
/// The CLI enables it (`enable`); a process that has not (the library's tests) waits as
/// tpm2-tss and trousers do. One call at a time is guarded: calls do not nest.
public final class TPMWatchdog: Sendable {
    /// The one watchdog of the process.
    public static let shared = TPMWatchdog()

    /// The default bound, in seconds (issue 19: every TPM command ends within 10 s).
    public static let defaultSeconds = 10.0

    /// What the caller and the watchdog thread share, under one lock.
    private struct State {
        var seconds = 0.0
        var status: Int32 = 2
        var format: (@Sendable (String) -> String)?
        var started = false
        /// The deadline of the call in progress (CLOCK_MONOTONIC), or nil.
        var deadline: timespec?
        /// The line to write when the deadline passes, prepared when the call began.
        var line: [UInt8] = []
    }

    private let state = Threads.Locked(State())

    private init() {}

    /// Bounds every guarded TPM call of this process to `seconds`: a call still waiting then
    /// ends the process with `format(message)` on standard error and exit status `status`,
    /// where the message names the bound and the transport
    /// (`the TPM did not answer within 10 s through TCTI '…'`).
    public func enable(seconds: Double, status: Int32, format: @escaping @Sendable (String) -> String) {
        let start = state.withLock { s in
            s.value.seconds = seconds
            s.value.status = status
            s.value.format = format
            defer { s.value.started = true }
            return !s.value.started
        }
        if start { Threads.detach { self.watch() } }
    }

    /// The bound in force, in seconds; 0 when none is.
    public var bound: Double {
        state.withLock { $0.value.format == nil ? 0 : $0.value.seconds }
    }

    /// Runs `body`, one call that waits on the TPM through `transport` (`TCTI 'device:/dev/
    /// tpmrm0'`, `tcsd at localhost:30003`), under the bound; `seconds` overrides the bound for
    /// this call only (a TPM 1.2's RSA key generation).
    public func guarding<T>(_ transport: @autoclosure () -> String, seconds: Double? = nil,
                            _ body: () throws -> T) rethrows -> T {
        arm(transport, seconds: seconds)
        defer { disarm() }
        return try body()
    }

    /// The sentence of the line written when the bound passes.
    public static func message(seconds: Double, transport: String) -> String {
        let s = seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
        return "the TPM did not answer within \(s) s through \(transport)"
    }

    private func arm(_ transport: () -> String, seconds override: Double?) {
        state.withLock { st in
            guard let format = st.value.format else { return }
            let s = override ?? st.value.seconds
            st.value.line = Array(format(TPMWatchdog.message(seconds: s, transport: transport())).utf8)
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let whole = Int(s), frac = Int((s - Double(whole)) * 1e9)
            var end = timespec(tv_sec: now.tv_sec + whole, tv_nsec: now.tv_nsec + frac)
            if end.tv_nsec >= 1_000_000_000 { end.tv_sec += 1; end.tv_nsec -= 1_000_000_000 }
            st.value.deadline = end
            st.broadcast()
        }
    }

    private func disarm() {
        state.withLock { $0.value.deadline = nil }
    }

    /// The watchdog thread: sleeps until a call is armed, then until its deadline or its end.
    private func watch() -> Never {
        let (line, status) = state.withLock { s -> ([UInt8], Int32) in
            while true {
                guard let end = s.value.deadline else {
                    s.wait()
                    continue
                }
                s.wait(until: end)
                guard let d = s.value.deadline else { continue }
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                if now.tv_sec > d.tv_sec || (now.tv_sec == d.tv_sec && now.tv_nsec >= d.tv_nsec) {
                    return (s.value.line, s.value.status)
                }
            }
        }
        // The calling thread is blocked in the TPM call; end the process from here.
        line.withUnsafeBytes { b in
            var off = 0
            while off < b.count {
                let n = write(2, b.baseAddress! + off, b.count - off)
                if n <= 0 { break }
                off += n
            }
        }
        _exit(status)
    }
}
