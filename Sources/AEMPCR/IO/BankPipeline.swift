import Glibc

/// Hashes one byte stream in several banks at once, each bank on its own thread, while the
/// caller's thread produces the stream (reads, gunzips). Chunks go through a small ring of
/// fixed buffers, so memory stays bounded (`slots × slotSize`) whatever the stream's length.
/// The digests equal those of `MultiHasher` fed the same bytes sequentially.
final class BankPipeline: @unchecked Sendable {
    static let slotSize = 1 << 20
    static let slots = 8

    private let banks: [HashAlgorithm]
    private let buffers: [UnsafeMutableRawBufferPointer]
    private var lengths: [Int]
    private var published = 0
    private var next: [Int]
    private var closed = false
    private var results: [Digest?]
    /// Heap-allocated: a pthread object must not move, which a Swift stored property may.
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
            threads.append(startThread { self.consume(i) })
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
        for t in threads { pthread_join(t, nil) }
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

private final class ThreadBody: @unchecked Sendable {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a joinable POSIX thread running `body`.
func startThread(_ body: @escaping () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { arg in
        let b = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
        b.body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed (\(rc))")
    return tid
}

/// Shared state of `parallelMap`: a work counter and the results, behind a mutex.
private final class ParallelMapState<T>: @unchecked Sendable {
    var results: [Result<T, Error>?]
    var nextIndex = 0
    let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init(count: Int) {
        results = Array(repeating: nil, count: count)
        pthread_mutex_init(mutex, nil)
    }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    func take() -> Int? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard nextIndex < results.count else { return nil }
        nextIndex += 1
        return nextIndex - 1
    }
    func put(_ i: Int, _ r: Result<T, Error>) {
        pthread_mutex_lock(mutex)
        results[i] = r
        pthread_mutex_unlock(mutex)
    }
    func collected() -> [Result<T, Error>?] {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return results
    }
}

/// Runs `body` for each index on up to `workers` threads; results in index order. The first
/// error (by index) is rethrown after all have run.
func parallelMap<T>(count: Int, workers: Int, _ body: @escaping (Int) throws -> T) throws -> [T] {
    let state = ParallelMapState<T>(count: count)
    let work = {
        while let i = state.take() { state.put(i, Result { try body(i) }) }
    }
    let n = max(1, min(workers, count))
    let threads = (1..<n).map { _ in startThread(work) }
    work()
    for t in threads { pthread_join(t, nil) }
    return try state.collected().map { try $0!.get() }
}

/// Processors online.
var availableProcessors: Int {
    max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}
