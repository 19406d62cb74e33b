import Foundation

/// One line of `GET /events`: moby's `events.Message`. The deprecated `status`/`id`/`from` fields
/// dockerd fills only for container and image events, which meshd does not emit, so they are absent
/// here as they are on dockerd's swarm events.
public struct EventMessage: Codable, Sendable, Equatable {
    public struct Actor: Codable, Sendable, Equatable {
        public var ID: String
        public var Attributes: [String: String]
        public init(ID: String, Attributes: [String: String]) {
            self.ID = ID
            self.Attributes = Attributes
        }
    }

    /// `service`, `node`, `network`, `secret`, `config`, `container`, …
    public var `Type`: String
    /// `create`, `update`, `remove`, …
    public var Action: String
    public var Actor: Actor
    /// `swarm` for cluster objects (dockerd: events from the manager's store watch), `local` for the engine's own.
    public var scope: String
    /// Seconds since the epoch.
    public var time: Int64
    /// The same instant in nanoseconds since the epoch (not only the fraction).
    public var timeNano: Int64

    public init(type: String, action: String, actor: Actor, scope: String, timeNano: Int64) {
        self.Type = type
        self.Action = action
        self.Actor = actor
        self.scope = scope
        // Go's `t.Unix()`: floor division, also before 1970.
        self.time = timeNano >= 0 ? timeNano / 1_000_000_000 : (timeNano + 1) / 1_000_000_000 - 1
        self.timeNano = timeNano
    }

    enum CodingKeys: String, CodingKey { case `Type`, Action, Actor, scope, time, timeNano }
}

/// What `GET /events` asks for: times as nanoseconds since the epoch (nil: not given) and the filter.
public struct EventQuery: Sendable, Equatable {
    /// Replay buffered events from this instant on (dockerd replays nothing when neither bound is given).
    public var since: Int64?
    /// End the stream at this instant; a past `until` sends only buffered events.
    public var until: Int64?
    public var filter: EventFilter
    public init(since: Int64? = nil, until: Int64? = nil, filter: EventFilter = EventFilter()) {
        self.since = since
        self.until = until
        self.filter = filter
    }
}

extension EventMessage {
    /// Nanoseconds since the epoch of `date`. Seconds and fraction apart: scaling the whole Double by
    /// 1e9 would lose the last digits (1.8e18 is beyond a Double's 53-bit precision).
    public static func nanoseconds(_ date: Date) -> Int64 {
        let t = date.timeIntervalSince1970
        let seconds = t.rounded(.down)
        return Int64(seconds) * 1_000_000_000 + Int64(((t - seconds) * 1e9).rounded())
    }
}
