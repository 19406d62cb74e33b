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
        var parser = JSONTreeParser(Array(data))
        return try FoldingDecoder(value: try parser.document(), codingPath: []).decode(T.self)
    }
}

/// A parsed JSON document: booleans, numbers and strings keep their JSON kind (a `1` is never a
/// `true`), and integers keep all 64 bits.
enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

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

/// RFC 8259 JSON into a `JSONValue`. A parser of its own because building the tree through
/// JSONDecoder means trying each JSON kind in turn, and every failed try costs a DecodingError:
/// 40 times JSONDecoder's own time for a service spec. As Go's decoder does, it replaces invalid
/// UTF-8 with U+FFFD and takes the last of duplicate keys; it refuses control characters in
/// strings, trailing data, and nesting deeper than `maxDepth`.
struct JSONTreeParser {
    static let maxDepth = 512
    private let bytes: [UInt8]
    private var i = 0
    private var depth = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func document() throws -> JSONValue {
        skipSpace()
        let v = try value()
        skipSpace()
        guard i == bytes.count else { throw failure("data after the JSON value") }
        return v
    }

    private func failure(_ what: String) -> DecodingError {
        DecodingError.dataCorrupted(DecodingError.Context(codingPath: [], debugDescription: "\(what) at offset \(i)"))
    }

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    private mutating func value() throws -> JSONValue {
        guard i < bytes.count else { throw failure("unexpected end") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw failure("invalid character")
        }
    }

    private mutating func literal(_ word: String) throws {
        for b in word.utf8 {
            guard i < bytes.count, bytes[i] == b else { throw failure("invalid literal") }
            i += 1
        }
    }

    private mutating func nest() throws {
        depth += 1
        guard depth <= Self.maxDepth else { throw failure("nesting deeper than \(Self.maxDepth) levels") }
    }

    private mutating func object() throws -> JSONValue {
        try nest()
        i += 1
        var members: [String: JSONValue] = [:]
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw failure("expected a key") }
            let key = try string()
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw failure("expected ':'") }
            i += 1
            skipSpace()
            members[key] = try value()
            skipSpace()
            guard i < bytes.count else { throw failure("unexpected end") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            guard bytes[i] == UInt8(ascii: "}") else { throw failure("expected ',' or '}'") }
            i += 1
            depth -= 1
            return .object(members)
        }
    }

    private mutating func array() throws -> JSONValue {
        try nest()
        i += 1
        var elements: [JSONValue] = []
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipSpace()
            elements.append(try value())
            skipSpace()
            guard i < bytes.count else { throw failure("unexpected end") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            guard bytes[i] == UInt8(ascii: "]") else { throw failure("expected ',' or ']'") }
            i += 1
            depth -= 1
            return .array(elements)
        }
    }

    /// `i` is at the opening quote.
    private mutating func string() throws -> String {
        i += 1
        let start = i
        // Most strings have no escapes: take the bytes as they are.
        while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\") {
            guard bytes[i] >= 0x20 else { throw failure("control character in a string") }
            i += 1
        }
        guard i < bytes.count else { throw failure("unterminated string") }
        if bytes[i] == UInt8(ascii: "\"") {
            i += 1
            return String(decoding: bytes[start..<(i - 1)], as: UTF8.self)
        }
        var out = Array(bytes[start..<i])
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                return String(decoding: out, as: UTF8.self)
            }
            guard b >= 0x20 else { throw failure("control character in a string") }
            guard b == UInt8(ascii: "\\") else {
                out.append(b)
                i += 1
                continue
            }
            guard i + 1 < bytes.count else { throw failure("unterminated string") }
            let e = bytes[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar), i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"),
                    bytes[i + 1] == UInt8(ascii: "u")
                {
                    let save = i
                    i += 2
                    let low = try hex4()
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        i = save  // not a pair: the high half alone is replaced below
                    }
                }
                // A lone surrogate is U+FFFD, as Go decodes it.
                out.append(contentsOf: String(Unicode.Scalar(scalar).map(Character.init) ?? "\u{FFFD}").utf8)
            default: throw failure("invalid escape")
            }
        }
        throw failure("unterminated string")
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw failure("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw failure("invalid \\u escape")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    /// JSON's grammar exactly (no leading zeros, `+` or bare `.`); integers become Int64 or UInt64
    /// when they fit, everything else a finite Double.
    private mutating func number() throws -> JSONValue {
        let start = i
        func digits() -> Int {
            let s = i
            while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") { i += 1 }
            return i - s
        }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count else { throw failure("invalid number") }
        if bytes[i] == UInt8(ascii: "0") { i += 1 } else if digits() == 0 { throw failure("invalid number") }
        var integral = true
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            integral = false
            i += 1
            guard digits() > 0 else { throw failure("invalid number") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            integral = false
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw failure("invalid number") }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        if integral {
            if let v = Int64(text) { return .integer(v) }
            if let v = UInt64(text) { return .unsigned(v) }
        }
        guard let d = Double(text), d.isFinite else { throw failure("number \(text.prefix(40)) out of range") }
        return .double(d)
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
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
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
            throw DecodingError.valueNotFound(
                Any.self,
                DecodingError.Context(
                    codingPath: codingPath + [Index(currentIndex)],
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
