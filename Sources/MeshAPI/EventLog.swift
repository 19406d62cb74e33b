import Foundation
import Synchronization

/// The daemon's events service (moby's `daemon/events.Events`): a ring of the last `capacity` events
/// for `since`/`until` replays, and the live subscribers. Publishing never blocks: a subscriber that
/// stops reading loses new events once its buffer is full (dockerd skips a subscriber that does not
/// take an event within 100 ms), and never slows the manager that publishes.
public final class EventLog: Sendable {
    /// moby keeps 256; a cluster change (a scale, a drain) can emit dozens, so meshd keeps more.
    public static let defaultCapacity = 1024

    public let capacity: Int
    /// Events a subscriber may have waiting: a full replay plus a burst.
    let subscriberBuffer: Int
    private let state = Mutex<State>(State())

    private struct State {
        var ring: [EventMessage] = []
        /// Where the oldest event is once the ring is full.
        var head = 0
        var next = 0
        var subscribers: [Int: Subscriber] = [:]
        var dropped = 0

        /// Oldest first.
        var events: [EventMessage] { Array(ring[head...] + ring[..<head]) }
    }

    private struct Subscriber {
        let filter: EventFilter
        let until: Int64?
        let continuation: AsyncStream<EventMessage>.Continuation
    }

    public init(capacity: Int = EventLog.defaultCapacity) {
        precondition(capacity > 0)
        self.capacity = capacity
        subscriberBuffer = capacity + 4096
    }

    /// Appends `events` (in order) and hands them to every subscriber whose filter takes them.
    public func publish(_ events: [EventMessage]) {
        guard !events.isEmpty else { return }
        state.withLock { s in
            for e in events {
                if s.ring.count < capacity {
                    s.ring.append(e)
                } else {
                    s.ring[s.head] = e
                    s.head = (s.head + 1) % capacity
                }
                // Yielding under the lock keeps every subscriber's order the publish order, and a
                // subscription never sees an event twice or misses one between replay and live.
                for sub in s.subscribers.values where sub.filter.includes(e) && sub.until.map({ e.timeNano <= $0 }) ?? true {
                    if case .dropped = sub.continuation.yield(e) { s.dropped += 1 }
                }
            }
        }
    }

    /// The buffered events, oldest first.
    public func recent() -> [EventMessage] { state.withLock { $0.events } }

    /// Events lost by subscribers that did not keep up.
    public var droppedCount: Int { state.withLock { $0.dropped } }

    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Live events that pass `filter`, from now until the stream's consumer stops. For in-process
    /// readers (the cluster page).
    public func subscribe(filter: EventFilter = EventFilter()) -> AsyncStream<EventMessage> {
        subscribe(EventQuery(filter: filter))
    }

    /// `GET /events`: with `since` or `until`, the buffered events between them that pass the filter
    /// first; then, unless `until` has passed, live events until `until` (or for ever). The stream
    /// finishes at `until`; a consumer that stops ends the subscription.
    public func subscribe(_ query: EventQuery, now: Date = Date()) -> AsyncStream<EventMessage> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: EventMessage.self, bufferingPolicy: .bufferingOldest(subscriberBuffer))
        let nowNano = EventMessage.nanoseconds(now)
        let pastOnly = query.until.map { $0 < nowNano } ?? false
        let id: Int? = state.withLock { s in
            // dockerd replays only when a bound is given; without `since` the replay starts at the oldest.
            if query.since != nil || query.until != nil {
                let from = query.since ?? Int64.min
                let to = query.until ?? Int64.max
                for e in s.events where e.timeNano >= from && e.timeNano <= to && query.filter.includes(e) {
                    continuation.yield(e)
                }
            }
            if pastOnly { return nil }
            s.next += 1
            s.subscribers[s.next] = Subscriber(filter: query.filter, until: query.until, continuation: continuation)
            return s.next
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        // dockerd's `until` timer: the stream ends at that instant even when no event comes.
        let timer = query.until.map { until in
            Task { [weak self] in
                try? await Task.sleep(for: .nanoseconds(until - nowNano))
                if Task.isCancelled { return }
                self?.end(id)
            }
        }
        continuation.onTermination = { [weak self] _ in
            timer?.cancel()
            self?.remove(id)
        }
        return stream
    }

    private func end(_ id: Int) {
        state.withLock { $0.subscribers.removeValue(forKey: id) }?.continuation.finish()
    }

    private func remove(_ id: Int) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: id) }
    }
}
