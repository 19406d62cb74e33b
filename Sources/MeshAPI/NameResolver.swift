/// dockerd's single-object lookup (`daemon/cluster/helpers.go`): exact ID, then exact name, then a
/// unique ID prefix. Every `{id}` slot of the API accepts any of the three.
public enum NameResolver {
    public static func resolve<C: Collection>(
        _ ref: String, kind: String, in items: C, id: (C.Element) -> String,
        name: (C.Element) -> String?
    ) throws(EngineError) -> C.Element {
        guard !ref.isEmpty else { throw EngineError.notFound("\(kind)  not found") }
        if let hit = items.first(where: { id($0) == ref }) { return hit }
        if let hit = items.first(where: { name($0) == ref }) { return hit }
        let prefixed = items.filter { id($0).hasPrefix(ref) }
        if prefixed.count == 1 { return prefixed[0] }
        if prefixed.count > 1 { throw EngineError.invalidArgument("\(kind) \(ref) is ambiguous (\(prefixed.count) matches found)") }
        throw EngineError.notFound("\(kind) \(ref) not found")
    }
}
