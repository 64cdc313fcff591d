// SPDX-License-Identifier: Apache-2.0
import AEMPCRSystem
import Glibc
import Synchronization

/// Hashes one byte stream in several banks at once, each bank on its own thread, while the
/// caller's thread produces the stream (reads, gunzips). Chunks go through a small ring of
/// fixed buffers, so memory stays bounded (`slots × slotSize`) whatever the stream's length.
/// The digests equal those of `MultiHasher` fed the same bytes sequentially.
final class BankPipeline: @unchecked Sendable {  // the ring's buffers are shared by design: a slot is written before it is published and read until every bank moves past it, both ordered by `ring`'s lock
    static let slotSize = 1 << 20
    static let slots = 8

    /// What the threads share, under one lock: how far the producer and each bank are.
    private struct Ring {
        /// Bytes in each slot.
        var lengths: [Int]
        /// Slots published so far.
        var published = 0
        /// Per bank, the next slot it hashes.
        var next: [Int]
        var closed = false
        var results: [Digest?]
    }

    private let banks: [HashAlgorithm]
    private let buffers: [UnsafeMutableRawBufferPointer]
    private let ring: Threads.Locked<Ring>
    private var threads: [pthread_t] = []
    /// The producer's own: slots it published (as `Ring.published`), bytes in the current slot.
    private var produced = 0
    private var fill = 0

    init(banks: [HashAlgorithm]) {
        self.banks = banks
        buffers = (0..<BankPipeline.slots).map { _ in .allocate(byteCount: BankPipeline.slotSize, alignment: 64) }
        ring = Threads.Locked(Ring(lengths: Array(repeating: 0, count: BankPipeline.slots),
                                   next: Array(repeating: 0, count: banks.count),
                                   results: Array(repeating: nil, count: banks.count)))
        for i in banks.indices {
            // The thread holds the pipeline until it ends; `finish` ends it.
            threads.append(Threads.start { self.consume(i) })
        }
    }

    deinit {
        for b in buffers { b.deallocate() }
    }

    /// Appends bytes to the stream (copied into the ring; blocks while every slot is in use).
    func update(_ data: UnsafeRawBufferPointer) {
        var rest = data
        while !rest.isEmpty {
            if fill == 0 { waitForFreeSlot() }
            let slot = buffers[produced % BankPipeline.slots]
            let n = min(rest.count, BankPipeline.slotSize - fill)
            (slot.baseAddress! + fill).copyMemory(from: rest.baseAddress!, byteCount: n)
            fill += n
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            if fill == BankPipeline.slotSize { publish() }
        }
    }

    private func waitForFreeSlot() {
        ring.withLock { r in
            while r.value.published - (r.value.next.min() ?? r.value.published) >= BankPipeline.slots { r.wait() }
        }
    }

    private func publish() {
        let length = fill
        ring.withLock { r in
            r.value.lengths[r.value.published % BankPipeline.slots] = length
            r.value.published += 1
            r.broadcast()
        }
        produced += 1
        fill = 0
    }

    /// Ends the stream and returns the digest of each bank. Must be called, also when the
    /// producer fails, or the bank threads wait forever.
    func finish() -> [HashAlgorithm: Digest] {
        if fill > 0 { publish() }
        ring.withLock { r in
            r.value.closed = true
            r.broadcast()
        }
        for t in threads { Threads.join(t) }
        threads = []
        let results = ring.value.results
        var out = [HashAlgorithm: Digest]()
        for (i, b) in banks.enumerated() { out[b] = results[i] }
        return out
    }

    private func consume(_ i: Int) {
        var hasher = MultiHasher([banks[i]])
        while true {
            // The next slot and its length; nil once the stream is closed and all hashed.
            let taken: (slot: Int, length: Int)? = ring.withLock { r in
                while r.value.next[i] >= r.value.published && !r.value.closed { r.wait() }
                if r.value.next[i] >= r.value.published { return nil }
                let slot = r.value.next[i] % BankPipeline.slots
                return (slot, r.value.lengths[slot])
            }
            guard let taken else { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffers[taken.slot])[0..<taken.length]))
            ring.withLock { r in
                r.value.next[i] += 1
                r.broadcast()
            }
        }
        let digest = hasher.finalize()[banks[i]]
        ring.withLock { $0.value.results[i] = digest }
    }
}

/// Runs `body` for each index on up to `workers` threads; results in index order. The first
/// error (by index) is rethrown after all have run.
func parallelMap<T>(count: Int, workers: Int, _ body: @escaping (Int) throws -> T) throws -> [T] {
    // The next index to take; each result is written by the one thread that took its index.
    // An atomic counter, not a Mutex: ThreadSanitizer sees the atomic operation (inlined here),
    // not the lock inside the prebuilt Synchronization library, whose futex it does not model.
    let next = Atomic<Int>(0)
    let results = Threads.Locked([Result<T, Error>?](repeating: nil, count: count))
    let work = {
        while case let i = next.wrappingAdd(1, ordering: .relaxed).oldValue, i < count {
            let r = Result { try body(i) }
            results.withLock { $0.value[i] = r }
        }
    }
    let n = max(1, min(workers, count))
    let threads = (1..<n).map { _ in Threads.start(work) }
    work()
    for t in threads { Threads.join(t) }
    return try results.value.map { try $0!.get() }
}

/// Processors online.
var availableProcessors: Int {
    max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}
