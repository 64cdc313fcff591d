// SPDX-License-Identifier: Apache-2.0
import AEMPCRSystem
import Glibc
import Synchronization

/// Hashes one byte stream in several banks at once, each bank on its own thread, while the
/// caller's thread produces the stream (reads, gunzips). Chunks go through a small ring of
/// fixed buffers, so memory stays bounded (`slots × slotSize`) whatever the stream's length.
/// The digests equal those of `MultiHasher` fed the same bytes sequentially.
final class BankPipeline: @unchecked Sendable {  // the ring is shared by design: a slot is written before it is published and read until every bank moves past it; the counters are read and written with `mutex` held
    static let slotSize = 1 << 20
    static let slots = 8

    private let banks: [HashAlgorithm]
    private let buffers: [UnsafeMutableRawBufferPointer]
    private var lengths: [Int]
    private var published = 0
    private var next: [Int]
    private var closed = false
    private var results: [Digest?]
    /// Heap-allocated: a pthread object must not move, which a Swift stored property may. A pthread
    /// mutex and condition, not Synchronization.Mutex: the threads wait on a condition.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var threads: [pthread_t] = []
    /// Bytes buffered in the current slot, not yet published.
    private var fill = 0

    init(banks: [HashAlgorithm]) {
        self.banks = banks
        buffers = (0..<BankPipeline.slots).map { _ in .allocate(byteCount: BankPipeline.slotSize, alignment: 64) }
        lengths = Array(repeating: 0, count: BankPipeline.slots)
        next = Array(repeating: 0, count: banks.count)
        results = Array(repeating: nil, count: banks.count)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        for i in banks.indices {
            // The thread holds the pipeline until it ends; `finish` ends it.
            threads.append(Threads.start { self.consume(i) })
        }
    }

    deinit {
        for b in buffers { b.deallocate() }
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    private func lock() { pthread_mutex_lock(mutex) }
    private func unlock() { pthread_mutex_unlock(mutex) }

    /// Appends bytes to the stream (copied into the ring; blocks while every slot is in use).
    func update(_ data: UnsafeRawBufferPointer) {
        var rest = data
        while !rest.isEmpty {
            if fill == 0 { waitForFreeSlot() }
            let slot = buffers[published % BankPipeline.slots]
            let n = min(rest.count, BankPipeline.slotSize - fill)
            (slot.baseAddress! + fill).copyMemory(from: rest.baseAddress!, byteCount: n)
            fill += n
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            if fill == BankPipeline.slotSize { publish() }
        }
    }

    private func waitForFreeSlot() {
        lock()
        while published - (next.min() ?? published) >= BankPipeline.slots { pthread_cond_wait(cond, mutex) }
        unlock()
    }

    private func publish() {
        lock()
        lengths[published % BankPipeline.slots] = fill
        published += 1
        fill = 0
        pthread_cond_broadcast(cond)
        unlock()
    }

    /// Ends the stream and returns the digest of each bank. Must be called, also when the
    /// producer fails, or the bank threads wait forever.
    func finish() -> [HashAlgorithm: Digest] {
        if fill > 0 { publish() }
        lock()
        closed = true
        pthread_cond_broadcast(cond)
        unlock()
        for t in threads { Threads.join(t) }
        threads = []
        var out = [HashAlgorithm: Digest]()
        lock()
        for (i, b) in banks.enumerated() { out[b] = results[i] }
        unlock()
        return out
    }

    private func consume(_ i: Int) {
        var hasher = MultiHasher([banks[i]])
        while true {
            lock()
            while next[i] >= published && !closed { pthread_cond_wait(cond, mutex) }
            if next[i] >= published && closed { unlock(); break }
            let slot = next[i] % BankPipeline.slots
            let length = lengths[slot]
            unlock()
            hasher.update(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffers[slot])[0..<length]))
            lock()
            next[i] += 1
            pthread_cond_broadcast(cond)
            unlock()
        }
        let digest = hasher.finalize()[banks[i]]
        lock()
        results[i] = digest
        unlock()
    }
}

/// Runs `body` for each index on up to `workers` threads; results in index order. The first
/// error (by index) is rethrown after all have run.
func parallelMap<T>(count: Int, workers: Int, _ body: @escaping (Int) throws -> T) throws -> [T] {
    // The next index to take; each result is written by the one thread that took its index.
    // An atomic counter, not a Mutex: ThreadSanitizer sees the atomic operation (inlined here),
    // not the lock inside the prebuilt Synchronization library, whose futex it does not model.
    let next = Atomic<Int>(0)
    let results = ResultSlots<T>(count: count)
    let work = {
        while case let i = next.wrappingAdd(1, ordering: .relaxed).oldValue, i < count {
            results.put(i, Result { try body(i) })
        }
    }
    let n = max(1, min(workers, count))
    let threads = (1..<n).map { _ in Threads.start(work) }
    work()
    for t in threads { Threads.join(t) }
    return try results.collected().map { try $0.get() }
}

/// The results of `parallelMap`, one slot per index.
private final class ResultSlots<T>: @unchecked Sendable {  // each slot is written by one thread (the one that took its index) and read after every thread is joined
    private let slots: UnsafeMutableBufferPointer<Result<T, Error>?>
    init(count: Int) { slots = .allocate(capacity: count); slots.initialize(repeating: nil) }
    deinit { slots.deinitialize(); slots.deallocate() }
    func put(_ i: Int, _ r: Result<T, Error>) { slots[i] = r }
    func collected() -> [Result<T, Error>] { slots.map { $0! } }
}

/// Processors online.
var availableProcessors: Int {
    max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}
