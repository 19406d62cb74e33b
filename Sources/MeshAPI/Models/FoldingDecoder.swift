import Foundation

/// Request bodies are decoded as dockerd (Go's encoding/json) decodes them: an object key names a
/// field if it equals the field's name ignoring case, so docker-py's `"Mode": {"global": {}}` is a
/// global service, not a default one. Foundation's JSONDecoder matches keys exactly and has no
/// type-aware hook for this (a key strategy sees no field list and would also rewrite the keys of
/// `Labels`-like dictionaries), so the body is parsed once into a `JSONValue` tree and the models'
/// own `Decodable` conformances read it through `FoldingDecoder`, whose keyed containers look the
/// requested key up exactly and then case-insensitively. The models need no per-type code.
///
/// Unknown keys are ignored as Go ignores them. A member that is absent or null leaves a field Go's
/// zero value (false, 0, "", empty) as Go leaves it, an optional field nil: dockerd never demands
/// a field, it validates the zero value afterwards (an absent `Image` is "image reference must be
/// provided", not a decoding error). Where Go lets the last of several keys that fold to
/// one field (`"Global"` and `"global"`) win in document order, this decoder refuses the body with
/// an error naming the keys: either key being dropped without a word is what must not happen.
extension EngineJSON {
    public static func decodeRequest<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let tree = try JSONDecoder().decode(JSONValue.self, from: data)
        return try FoldingDecoder(value: tree, codingPath: []).decode(T.self)
    }
}

/// A parsed JSON document. Parsed by JSONDecoder so that booleans, numbers and strings keep their
/// JSON kind (a `1` is never a `true`), and integers keep all 64 bits.
enum JSONValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let v = try? c.decode(Bool.self) { self = .bool(v); return }
        if let v = try? c.decode(Int64.self) { self = .integer(v); return }
        if let v = try? c.decode(UInt64.self) { self = .unsigned(v); return }
        if let v = try? c.decode(Double.self) { self = .double(v); return }
        if let v = try? c.decode(String.self) { self = .string(v); return }
        if let v = try? c.decode([JSONValue].self) { self = .array(v); return }
        // The last form decodes with `try`, so a failure says what went wrong.
        self = .object(try c.decode([String: JSONValue].self))
    }

    var numberText: String {
        switch self {
        case .integer(let i): "\(i)"
        case .unsigned(let u): "\(u)"
        case .double(let d): "\(d)"
        default: kind
        }
    }

    /// How Go's error messages name a JSON kind.
    var kind: String {
        switch self {
        case .null: "null"
        case .bool: "bool"
        case .integer, .unsigned, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

/// One value of the tree being decoded; it is its own single-value container.
struct FoldingDecoder: Decoder, SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        switch value {
        case .object(let members): return KeyedDecodingContainer(FoldingKeyedContainer<Key>(members: members, codingPath: codingPath))
        case .null: return KeyedDecodingContainer(FoldingKeyedContainer<Key>(members: [:], codingPath: codingPath))
        default: throw DecodingError.typeMismatch([String: Any].self, context("an object, not \(value.kind)"))
        }
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        switch value {
        case .array(let elements): return FoldingUnkeyedContainer(elements: elements, codingPath: codingPath)
        case .null: return FoldingUnkeyedContainer(elements: [], codingPath: codingPath)
        default: throw DecodingError.typeMismatch([Any].self, context("an array, not \(value.kind)"))
        }
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { self }

    func context(_ text: String) -> DecodingError.Context { DecodingError.Context(codingPath: codingPath, debugDescription: text) }

    // MARK: SingleValueDecodingContainer

    func decodeNil() -> Bool { value == .null }

    func decode(_ type: Bool.Type) throws -> Bool {
        switch value {
        case .bool(let b): return b
        case .null: return false
        default: throw mismatch(type)
        }
    }

    func decode(_ type: String.Type) throws -> String {
        switch value {
        case .string(let s): return s
        case .null: return ""
        default: throw mismatch(type)
        }
    }

    func decode(_ type: Double.Type) throws -> Double {
        switch value {
        case .integer(let i): return Double(i)
        case .unsigned(let u): return Double(u)
        case .double(let d): return d
        case .null: return 0
        default: throw mismatch(type)
        }
    }

    func decode(_ type: Float.Type) throws -> Float {
        let d = try decode(Double.self)
        guard abs(d) <= Double(Float.greatestFiniteMagnitude) else {
            throw DecodingError.dataCorrupted(context("number \(d) does not fit in Float"))
        }
        return Float(d)
    }

    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    /// Go refuses a fraction or an out-of-range number for an integer field; so does this.
    func integer<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
        let fitted: I?
        switch value {
        case .integer(let i): fitted = I(exactly: i)
        case .unsigned(let u): fitted = I(exactly: u)
        case .double(let d): fitted = d.isFinite ? I(exactly: d) : nil
        case .null: fitted = 0
        default: throw mismatch(type)
        }
        guard let fitted else { throw DecodingError.dataCorrupted(context("number \(value.numberText) does not fit in \(I.self)")) }
        return fitted
    }

    /// Dates are RFC 3339 strings and byte arrays base64, as in `EngineJSON.decoder()`; every other
    /// type decodes itself from this decoder.
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if T.self == Date.self {
            // Go's zero time, 0001-01-01T00:00:00Z.
            if value == .null { return Date(timeIntervalSince1970: -62_135_596_800) as! T }
            let text = try decode(String.self)
            guard let date = EngineJSON.parseDate(text) else {
                throw DecodingError.dataCorrupted(context("not an RFC 3339 time: \(text.prefix(40))"))
            }
            return date as! T
        }
        if T.self == Data.self {
            let text = try decode(String.self)
            guard let data = Data(base64Encoded: text) else { throw DecodingError.dataCorrupted(context("not base64")) }
            return data as! T
        }
        return try T(from: self)
    }

    func mismatch(_ type: Any.Type) -> DecodingError {
        DecodingError.typeMismatch(type, context("cannot take a JSON \(value.kind)"))
    }
}

/// An object's members, found by the field's exact name and then by its name ignoring case.
struct FoldingKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [CodingKey]
    /// Lower-cased key → the body's spellings of it.
    let spellings: [String: [String]]

    init(members: [String: JSONValue], codingPath: [CodingKey]) {
        self.members = members
        self.codingPath = codingPath
        spellings = Dictionary(grouping: members.keys, by: { $0.lowercased() })
    }

    /// Every key of the body as it is spelt: a dictionary (`Labels`) must see its keys untouched.
    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

    /// The body's keys that `key` claims: its exact spelling, and other spellings of it that are not
    /// keys of this type themselves. A dictionary's keys are all keys of their type, so `"a"` and
    /// `"A"` in `Labels` stay two labels; a struct's `"mode"` is no key of its own and folds onto `Mode`.
    func candidates(_ key: Key) -> [String] {
        (spellings[key.stringValue.lowercased()] ?? []).filter { $0 == key.stringValue || Key(stringValue: $0) == nil }
    }

    /// The member that `key` names, nil when the body has none.
    func member(_ key: Key) throws -> JSONValue? {
        let found = candidates(key)
        if found.count > 1 {
            let names = found.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
            throw DecodingError.dataCorrupted(DecodingError.Context(
                codingPath: codingPath + [key], debugDescription: "the keys \(names) all name the field \(key.stringValue); send one"))
        }
        return found.first.flatMap { members[$0] }
    }

    /// An absent member decodes as null, which is Go's zero value for a required field.
    func child(_ key: Key) throws -> FoldingDecoder {
        FoldingDecoder(value: try member(key) ?? .null, codingPath: codingPath + [key])
    }

    func contains(_ key: Key) -> Bool {
        // An ambiguous key counts as present so that decoding it reaches `member` and its error.
        !candidates(key).isEmpty
    }

    func decodeNil(forKey key: Key) throws -> Bool { (try member(key) ?? .null) == .null }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try child(key).decode(type) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try child(key).decode(type) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try child(key).decode(type) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try child(key).decode(type) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try child(key).decode(type) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try child(key).decode(type) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try child(key).decode(type) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try child(key).decode(type) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try child(key).decode(type) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try child(key).decode(type) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try child(key).decode(type) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try child(key).decode(type) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try child(key).decode(type) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try child(key).decode(type) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try child(key).decode(type) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { try child(key).unkeyedContainer() }

    func superDecoder() throws -> Decoder { FoldingDecoder(value: members["super"] ?? .null, codingPath: codingPath) }

    func superDecoder(forKey key: Key) throws -> Decoder { try child(key) }
}

/// An array's elements in order.
struct FoldingUnkeyedContainer: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let codingPath: [CodingKey]
    private(set) var currentIndex = 0

    init(elements: [JSONValue], codingPath: [CodingKey]) {
        self.elements = elements
        self.codingPath = codingPath
    }

    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    struct Index: CodingKey {
        var intValue: Int?
        var stringValue: String { "\(intValue ?? 0)" }
        init(_ i: Int) { intValue = i }
        init?(stringValue: String) { nil }
        init?(intValue: Int) { self.intValue = intValue }
    }

    mutating func next() throws -> FoldingDecoder {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(Any.self, DecodingError.Context(codingPath: codingPath + [Index(currentIndex)],
                                                                               debugDescription: "the array has no more elements"))
        }
        defer { currentIndex += 1 }
        return FoldingDecoder(value: elements[currentIndex], codingPath: codingPath + [Index(currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, elements[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next().decode(type) }
    mutating func decode(_ type: String.Type) throws -> String { try next().decode(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try next().decode(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try next().decode(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try next().decode(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next().decode(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next().decode(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next().decode(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next().decode(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next().decode(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next().decode(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next().decode(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next().decode(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next().decode(type) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer { try next().unkeyedContainer() }

    mutating func superDecoder() throws -> Decoder { try next() }
}
