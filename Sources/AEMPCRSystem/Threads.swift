// SPDX-License-Identifier: Apache-2.0
import Glibc

/// POSIX threads, started in one place: the bank hashers and `parallelMap` (joined), the TPM
/// watchdog (detached). Raw threads, not Swift concurrency: the bodies block in `read`, in
/// hashing and in tpm2-tss, which would starve the cooperative pool. The state threads share
/// is held in `Threads.Locked`, the one lock of the package.
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

    /// A value shared between threads: read and written only while its lock is held
    /// (`withLock`), where a thread may also wait for another to change it (`wait`, a condition
    /// on the same lock) - what swift-nio's `NIOLockedValueBox` and a condition variable do
    /// together.
    ///
    /// A pthread mutex and condition, not `Synchronization.Mutex`: the bank hashers and the TPM
    /// watchdog wait on a condition (the watchdog with a deadline), which `Mutex` does not
    /// offer; and ThreadSanitizer (`.ci/run`) intercepts pthread calls, while it cannot see the
    /// lock inside the prebuilt Synchronization library order the accesses.
    public final class Locked<Value>: @unchecked Sendable {  // the value is on the heap and read or written only through `Held`, whose existence means the mutex is held
        // On the heap: a pthread object must not move, which a Swift stored property may.
        private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        private let storage = UnsafeMutablePointer<Value>.allocate(capacity: 1)

        public init(_ value: Value) {
            storage.initialize(to: value)
            pthread_mutex_init(mutex, nil)
            var attr = pthread_condattr_t()
            pthread_condattr_init(&attr)
            // Deadlines (`wait(until:)`) on the monotonic clock: a clock step does not move them.
            pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
            pthread_cond_init(condition, &attr)
            pthread_condattr_destroy(&attr)
        }

        deinit {
            pthread_cond_destroy(condition)
            pthread_mutex_destroy(mutex)
            storage.deinitialize(count: 1)
            storage.deallocate()
            condition.deallocate()
            mutex.deallocate()
        }

        /// Runs `body` with the lock held; `body` reads and changes the value through `Held`.
        public func withLock<R, E: Error>(_ body: (Held) throws(E) -> R) throws(E) -> R {
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return try body(Held(owner: self))
        }

        /// The value, read with the lock held.
        public var value: Value {
            withLock { $0.value }
        }

        /// The lock held: the value, and the condition. Only valid inside `withLock`.
        public struct Held {
            fileprivate let owner: Locked

            public var value: Value {
                get { owner.storage.pointee }
                nonmutating _modify { yield &owner.storage.pointee }
                nonmutating set { owner.storage.pointee = newValue }
            }

            /// Releases the lock until another thread signals, then holds it again: check what
            /// was waited for again (wake-ups may be spurious).
            public func wait() {
                pthread_cond_wait(owner.condition, owner.mutex)
            }

            /// `wait()`, or until `deadline` (CLOCK_MONOTONIC) passes.
            public func wait(until deadline: timespec) {
                var d = deadline
                _ = pthread_cond_timedwait(owner.condition, owner.mutex, &d)
            }

            /// Wakes every thread waiting.
            public func broadcast() { pthread_cond_broadcast(owner.condition) }
        }
    }
}
