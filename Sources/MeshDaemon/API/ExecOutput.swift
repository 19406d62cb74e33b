import Dispatch
import MeshAPI
import Synchronization

/// An exec's output on its way to the attached client, with backpressure: the reading thread
/// waits while `limit` chunks are undelivered, so a slow client slows the process down (as a
/// pipe would) instead of growing memory or losing output. Once the client has gone
/// (`detach`), chunks are dropped and the reader never waits again, so the process never
/// blocks on a client that is not there.
final class ExecOutput: Sendable {
    private struct State {
        var queue: [OutputChunk] = []
        var head = 0
        var waiting: CheckedContinuation<OutputChunk?, Never>?
        var finished = false
        var detached = false
    }
    private let state = Mutex(State())
    private let slots: DispatchSemaphore

    init(limit: Int = 64) { slots = DispatchSemaphore(value: limit) }

    /// From the reading thread; blocks while the client is `limit` chunks behind.
    func put(_ chunk: OutputChunk) {
        if state.withLock({ $0.detached }) { return }
        slots.wait()
        let waiter = state.withLock { s -> CheckedContinuation<OutputChunk?, Never>? in
            if s.detached { return nil }
            if let w = s.waiting {
                s.waiting = nil
                return w
            }
            s.queue.append(chunk)
            return nil
        }
        if let waiter {
            slots.signal()
            waiter.resume(returning: chunk)
        }
    }

    /// The output ended; what is queued is still delivered.
    func finish() {
        let waiter = state.withLock { s -> CheckedContinuation<OutputChunk?, Never>? in
            s.finished = true
            defer { s.waiting = nil }
            return s.waiting
        }
        waiter?.resume(returning: nil)
    }

    /// The client went away: nothing more is kept, and a waiting reader goes on.
    func detach() {
        let (dropped, waiter) = state.withLock { s -> (Int, CheckedContinuation<OutputChunk?, Never>?) in
            s.detached = true
            let n = s.queue.count - s.head
            s.queue = []
            s.head = 0
            defer { s.waiting = nil }
            return (n, s.waiting)
        }
        waiter?.resume(returning: nil)
        // The reader may be waiting for a slot: one more than it can ever need.
        for _ in 0...dropped { slots.signal() }
    }

    /// The next chunk, nil at the end. One consumer at a time.
    func next() async -> OutputChunk? {
        await withCheckedContinuation { (c: CheckedContinuation<OutputChunk?, Never>) in
            let now = state.withLock { s -> (OutputChunk?, Bool) in
                if s.head < s.queue.count {
                    let chunk = s.queue[s.head]
                    s.head += 1
                    if s.head == s.queue.count {
                        s.queue = []
                        s.head = 0
                    }
                    return (chunk, true)
                }
                if s.finished || s.detached { return (nil, true) }
                s.waiting = c
                return (nil, false)
            }
            if now.1 {
                if now.0 != nil { slots.signal() }
                c.resume(returning: now.0)
            }
        }
    }

    /// As the attachment's stream.
    var stream: AsyncStream<OutputChunk> { AsyncStream(unfolding: { await self.next() }, onCancel: { self.detach() }) }
}
