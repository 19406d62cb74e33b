/// The one rule for turning ids into parts of kernel object names (namespaces, links): only ASCII
/// letters, digits and '_' (every kernel name accepts them, and '-' is left to separate the parts),
/// cut to `length`. Sandboxes and task namespaces both use it, so one id never shortens two ways.
public enum KernelName {
    public static func short(_ id: String, length: Int) -> String {
        String(
            id.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }
                .prefix(length).map(Character.init))
    }
}
