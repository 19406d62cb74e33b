/// Object IDs in Docker's format: 128 random bits printed as 25 lowercase base-36 characters.
public enum ObjectID {
    public static let length = 25

    public static func make() -> String {
        var g = SystemRandomNumberGenerator()
        return make(using: &g)
    }

    /// Deterministic IDs for tests come from a seeded generator.
    public static func make<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Base36.encode(bytes, width: length)
    }

    /// True for 25 characters of `[0-9a-z]`.
    public static func isValid(_ text: String) -> Bool {
        text.utf8.count == length && Base36.isBase36(Substring(text))
    }
}
