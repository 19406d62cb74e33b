import Synchronization

/// Lets one caller at a time through, in arrival order. Actors are reentrant at every `await`:
/// without this, a second apply entering while the first waits on the kernel would see the
/// baseline the first has moved out, and both would write from a stale picture.
public final class OneAtATime: Sendable {
    private struct State {
        var busy = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    public init() {}

    public func enter() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now: Bool = state.withLock { s in
                if s.busy {
                    s.waiting.append(c)
                    return false
                }
                s.busy = true
                return true
            }
            if now { c.resume() }
        }
    }

    /// Hands the turn to the next waiter, if any.
    public func leave() {
        let next: CheckedContinuation<Void, Never>? = state.withLock { s in
            if s.waiting.isEmpty {
                s.busy = false
                return nil
            }
            return s.waiting.removeFirst()
        }
        next?.resume()
    }
}
