/// A reader for the tar streams image layers are made of: ustar and GNU headers, pax extended
/// headers (long paths, big sizes, ids, xattrs), GNU long names, base-256 numbers. Written for
/// hostile input: every number, length and checksum is checked, and a bad archive is an error.

/// Where tar bytes come from: `read(upTo:)` returns at most `n` bytes and an empty array only at
/// the end of the stream.
public protocol ByteSource: AnyObject {
    func read(upTo n: Int) throws -> [UInt8]
}

/// Bytes already in memory (tests, manifests).
public final class MemorySource: ByteSource {
    let bytes: [UInt8]
    var offset = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public func read(upTo n: Int) throws -> [UInt8] {
        let end = min(bytes.count, offset + n)
        defer { offset = end }
        return Array(bytes[offset..<end])
    }
}

public struct TarEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file, hardlink, symlink, characterDevice, blockDevice, directory, fifo
    }
    public var path: String
    public var kind: Kind
    public var size: Int64
    /// Permission bits with setuid/setgid/sticky (07777).
    public var mode: UInt32
    public var uid: Int
    public var gid: Int
    public var mtime: Int64
    public var linkTarget: String
    public var devMajor: UInt32
    public var devMinor: UInt32
    /// From pax `SCHILY.xattr.<name>` records.
    public var xattrs: [String: [UInt8]]
}

public enum TarError: Error, Equatable, CustomStringConvertible {
    case truncated(entry: String?)
    case badChecksum(offset: Int64)
    case badNumber(field: String, offset: Int64)
    case badPax(String)
    case unsupportedType(Character, path: String)
    case tooLarge(String)

    public var description: String {
        switch self {
        case .truncated(let e): e.map { "tar stream ends inside entry \"\($0)\"" } ?? "tar stream ends inside a header"
        case .badChecksum(let o): "tar header at offset \(o) has a bad checksum (not a tar stream, or corrupt)"
        case .badNumber(let f, let o): "tar header at offset \(o) has an invalid \(f) field"
        case .badPax(let r): "bad pax extended header: \(r)"
        case .unsupportedType(let t, let p): "tar entry \"\(p)\" has unsupported type '\(t)'"
        case .tooLarge(let r): "tar entry too large: \(r)"
        }
    }
}

public final class TarReader {
    let source: ByteSource
    /// Bytes of the current entry's data not yet read, then its padding to 512.
    var remaining: Int64 = 0
    var padding: Int64 = 0
    var offset: Int64 = 0
    var currentPath: String?
    var finished = false
    /// pax `g` records apply to every later entry.
    var globalPax: [String: [UInt8]] = [:]

    /// Long names, pax headers and xattrs are read into memory; cap them.
    static let maxMetadata = 1 << 20

    public init(_ source: ByteSource) { self.source = source }

    /// The next entry (its data is skipped if the caller did not read it), or nil at the end.
    public func next() throws -> TarEntry? {
        if finished { return nil }
        try skipData()
        var pax: [String: [UInt8]] = [:]
        var gnuLongName: String?
        var gnuLongLink: String?
        while true {
            let headerOffset = offset
            let block = try readExactly(512, allowEOFAtStart: true)
            guard let block else {
                // A stream that ends without the two zero blocks: accepted, as GNU tar and Go's archive/tar do.
                finished = true
                return nil
            }
            if block.allSatisfy({ $0 == 0 }) {
                // End of archive (the second zero block, if any, is left for the caller's drain).
                finished = true
                return nil
            }
            try verifyChecksum(block, at: headerOffset)
            let type = Character(UnicodeScalar(block[156]))
            let size = try number(block, 124, 12, "size", headerOffset)
            guard size >= 0 else { throw TarError.badNumber(field: "size", offset: headerOffset) }
            switch type {
            case "x", "g", "L", "K":
                guard size <= Self.maxMetadata else { throw TarError.tooLarge("metadata record of \(size) bytes") }
                let data = try readExactly(Int(size), allowEOFAtStart: false) ?? []
                try skip(Self.pad(size))
                if type == "L" { gnuLongName = Self.cString(data[...]) }
                if type == "K" { gnuLongLink = Self.cString(data[...]) }
                if type == "x" { pax.merge(try Self.parsePax(data)) { $1 } }
                if type == "g" { globalPax.merge(try Self.parsePax(data)) { $1 } }
                continue
            default:
                break
            }
            var entry = try parseHeader(block, type: type, size: size, at: headerOffset)
            let records = globalPax.merging(pax) { $1 }
            if let n = gnuLongName { entry.path = n }
            if let l = gnuLongLink { entry.linkTarget = l }
            try applyPax(records, to: &entry, at: headerOffset)
            // Old tars mark directories only by a trailing slash on a regular entry (judged on
            // the full name: a 100-byte truncation may end in a slash).
            if entry.kind == .file && (type == "0" || type == "\0") && entry.path.hasSuffix("/") { entry.kind = .directory }
            // Only regular files carry data: for links, devices, fifos and directories the size
            // field is not followed by bytes (as in Go's archive/tar, which wrote most layers).
            let dataSize: Int64 = entry.kind == .file ? entry.size : 0
            if entry.kind != .file { entry.size = 0 }
            remaining = dataSize
            padding = Self.pad(dataSize)
            currentPath = entry.path
            return entry
        }
    }

    /// Up to `max` bytes of the current entry's data; empty at its end.
    public func readData(max: Int = 1 << 16) throws -> [UInt8] {
        guard remaining > 0 else { return [] }
        let want = Int(min(Int64(max), remaining))
        let chunk = try source.read(upTo: want)
        if chunk.isEmpty { throw TarError.truncated(entry: currentPath) }
        remaining -= Int64(chunk.count)
        offset += Int64(chunk.count)
        return chunk
    }

    /// Reads what is left of the stream (the end blocks, padding) so a hash over it is complete.
    public func drain() throws {
        while true {
            let chunk = try source.read(upTo: 1 << 16)
            if chunk.isEmpty { return }
            offset += Int64(chunk.count)
        }
    }

    // MARK: internals

    static func pad(_ n: Int64) -> Int64 { (512 - n % 512) % 512 }

    func skipData() throws {
        while remaining > 0 { _ = try readData() }
        try skip(padding)
        padding = 0
    }

    func skip(_ n: Int64) throws {
        var left = n
        while left > 0 {
            let chunk = try source.read(upTo: Int(min(left, 1 << 16)))
            if chunk.isEmpty { throw TarError.truncated(entry: currentPath) }
            left -= Int64(chunk.count)
            offset += Int64(chunk.count)
        }
    }

    func readExactly(_ n: Int, allowEOFAtStart: Bool) throws -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(n)
        while out.count < n {
            let chunk = try source.read(upTo: n - out.count)
            if chunk.isEmpty {
                if out.isEmpty && allowEOFAtStart { return nil }
                throw TarError.truncated(entry: nil)
            }
            out += chunk
        }
        offset += Int64(n)
        return out
    }

    func verifyChecksum(_ b: [UInt8], at off: Int64) throws {
        let stored = try number(b, 148, 8, "checksum", off)
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (i, byte) in b.enumerated() {
            let v: UInt8 = (148..<156).contains(i) ? 32 : byte
            unsigned += Int64(v)
            signed += Int64(Int8(bitPattern: v))
        }
        // Old tars summed signed chars; both are accepted, as by GNU tar.
        guard stored == unsigned || stored == signed else { throw TarError.badChecksum(offset: off) }
    }

    /// An octal field (NUL/space terminated), or GNU base-256 when the top bit is set.
    func number(_ b: [UInt8], _ start: Int, _ len: Int, _ field: String, _ off: Int64) throws -> Int64 {
        let f = b[start..<start + len]
        if let first = f.first, first & 0x80 != 0 {
            // Base-256: big-endian two's complement of the remaining bits.
            guard first & 0x40 == 0 else { throw TarError.badNumber(field: field, offset: off) }  // negative
            var v: Int64 = Int64(first & 0x3f)
            for byte in f.dropFirst() {
                guard v <= (Int64.max >> 8) else { throw TarError.badNumber(field: field, offset: off) }
                v = (v << 8) | Int64(byte)
            }
            return v
        }
        var v: Int64 = 0
        var seenDigit = false
        var ended = false
        for byte in f {
            if byte == 0 || byte == 32 {
                if seenDigit { ended = true }
                continue
            }
            guard !ended, byte >= 48, byte <= 55 else { throw TarError.badNumber(field: field, offset: off) }
            guard v <= (Int64.max >> 3) else { throw TarError.badNumber(field: field, offset: off) }
            v = v * 8 + Int64(byte - 48)
            seenDigit = true
        }
        return v
    }

    static func cString(_ b: ArraySlice<UInt8>) -> String {
        let end = b.firstIndex(of: 0) ?? b.endIndex
        return String(decoding: b[b.startIndex..<end], as: UTF8.self)
    }

    func parseHeader(_ b: [UInt8], type: Character, size: Int64, at off: Int64) throws -> TarEntry {
        var name = Self.cString(b[0..<100])
        let magic = b[257..<263]
        // ustar ("ustar\0") has a prefix field; GNU ("ustar  ") uses those bytes for times.
        if magic.elementsEqual(Array("ustar\0".utf8)) {
            let prefix = Self.cString(b[345..<500])
            if !prefix.isEmpty { name = prefix + "/" + name }
        }
        let kind: TarEntry.Kind
        switch type {
        case "0", "\0", "7": kind = .file
        case "1": kind = .hardlink
        case "2": kind = .symlink
        case "3": kind = .characterDevice
        case "4": kind = .blockDevice
        case "5": kind = .directory
        case "6": kind = .fifo
        default: throw TarError.unsupportedType(type, path: name)
        }
        let mode = try number(b, 100, 8, "mode", off)
        let uid = try number(b, 108, 8, "uid", off)
        let gid = try number(b, 116, 8, "gid", off)
        let mtime = try number(b, 136, 12, "mtime", off)
        let major = try number(b, 329, 8, "devmajor", off)
        let minor = try number(b, 337, 8, "devminor", off)
        guard uid <= Int64(Int32.max), gid <= Int64(Int32.max) else { throw TarError.badNumber(field: "uid/gid", offset: off) }
        guard major <= Int64(UInt32.max), minor <= Int64(UInt32.max) else {
            throw TarError.badNumber(field: "devmajor/devminor", offset: off)
        }
        return TarEntry(
            path: name, kind: kind, size: size, mode: UInt32(truncatingIfNeeded: mode) & 0o7777, uid: Int(uid), gid: Int(gid),
            mtime: mtime, linkTarget: Self.cString(b[157..<257]), devMajor: UInt32(major), devMinor: UInt32(minor), xattrs: [:])
    }

    /// pax records: "<len> <key>=<value>\n", where len counts the whole record.
    static func parsePax(_ data: [UInt8]) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        var i = 0
        while i < data.count {
            if data[i] == 0 { break }  // some writers pad with NULs
            guard let space = data[i...].firstIndex(of: 32) else { throw TarError.badPax("record without a length") }
            let lenText = String(decoding: data[i..<space], as: UTF8.self)
            guard let len = Int(lenText), len > space - i + 1, i + len <= data.count else {
                throw TarError.badPax("bad record length \"\(lenText.prefix(20))\"")
            }
            let record = data[(space + 1)..<(i + len)]
            guard record.last == 10, let eq = record.firstIndex(of: 61) else { throw TarError.badPax("record without key=value\\n") }
            let key = String(decoding: record[record.startIndex..<eq], as: UTF8.self)
            out[key] = Array(record[(eq + 1)..<(record.endIndex - 1)])
            i += len
        }
        return out
    }

    func applyPax(_ records: [String: [UInt8]], to e: inout TarEntry, at off: Int64) throws {
        func text(_ k: String) -> String? { records[k].map { String(decoding: $0, as: UTF8.self) } }
        func int(_ k: String) throws -> Int64? {
            guard let t = text(k) else { return nil }
            // mtime may have a fraction; the integer part is enough here.
            let whole = t.split(separator: ".", maxSplits: 1).first.map(String.init) ?? t
            guard let v = Int64(whole), v >= 0 else { throw TarError.badPax("\(k)=\(t.prefix(30))") }
            return v
        }
        if let p = text("path") { e.path = p }
        if let l = text("linkpath") { e.linkTarget = l }
        if let s = try int("size") { e.size = s }
        if let u = try int("uid") {
            guard u <= Int64(Int32.max) else { throw TarError.badPax("uid=\(u)") }
            e.uid = Int(u)
        }
        if let g = try int("gid") {
            guard g <= Int64(Int32.max) else { throw TarError.badPax("gid=\(g)") }
            e.gid = Int(g)
        }
        if let m = try int("mtime") { e.mtime = m }
        for (k, v) in records where k.hasPrefix("SCHILY.xattr.") {
            e.xattrs[String(k.dropFirst("SCHILY.xattr.".count))] = v
        }
    }
}
