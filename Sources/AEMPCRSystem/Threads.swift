// SPDX-License-Identifier: Apache-2.0
import Glibc

/// POSIX threads, started in one place: the bank hashers and `parallelMap` (joined), the TPM
/// watchdog (detached). Raw threads, not Swift concurrency: the bodies block in `read`, in
/// hashing and in tpm2-tss, which would starve the cooperative pool.
public enum Threads {
    /// Starts a joinable thread running `body`; `join` it.
    public static func start(_ body: @escaping () -> Void) -> pthread_t {
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            Unmanaged<Body>.fromOpaque(arg!).takeRetainedValue().run()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed (\(rc))")
        return tid
    }

    /// Waits for a thread `start` returned to end.
    public static func join(_ thread: pthread_t) {
        pthread_join(thread, nil)
    }

    /// Starts a thread that nobody joins, running `body`.
    public static func detach(_ body: @escaping () -> Void) {
        pthread_detach(start(body))
    }

    /// The closure, handed to the new thread through `pthread_create`'s argument.
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }
}
