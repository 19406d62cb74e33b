/// The records one name (or one reverse address) has, by the ID of the service or task that put
/// them there. Almost every name has exactly one owner, so that case is stored inline instead of
/// in a dictionary of its own, which more than halves the index's memory; `tasks.<service>` grows
/// into a dictionary so adding or removing one task stays O(1) however large the service.
struct DNSOwners<Value: Sendable>: Sendable {
    private enum Storage: Sendable {
        case one(String, Value)
        case many([String: Value])
    }
    private var storage: Storage

    init(_ owner: String, _ value: Value) { storage = .one(owner, value) }

    mutating func set(_ owner: String, _ value: Value) {
        switch storage {
        case .one(let o, let old):
            storage = o == owner ? .one(owner, value) : .many([o: old, owner: value])
        case .many(var d):
            // Drop the enum's reference first so the dictionary is uniquely held and changes in place.
            storage = .one(owner, value)
            d[owner] = value
            storage = .many(d)
        }
    }

    /// Removes `owner`; returns true when no owner is left.
    mutating func remove(_ owner: String) -> Bool {
        switch storage {
        case .one(let o, _):
            return o == owner
        case .many(var d):
            storage = .many([:])
            d[owner] = nil
            if d.count == 1, let (o, v) = d.first { storage = .one(o, v) } else { storage = .many(d) }
            return d.isEmpty
        }
    }

    func forEach(_ body: (String, Value) -> Void) {
        switch storage {
        case .one(let o, let v): body(o, v)
        case .many(let d): for (o, v) in d { body(o, v) }
        }
    }
}
