import AsyncHTTPClient
import CompressNIO
import Foundation
import NIOCore

@testable import MeshImage

/// Writes tar streams for tests: ustar headers, a pax record for names over 100 bytes.
struct TarBuilder {
    var bytes: [UInt8] = []

    mutating func file(_ path: String, _ content: String, mode: UInt32 = 0o644, uid: Int = 0, gid: Int = 0) {
        file(path, Array(content.utf8), mode: mode, uid: uid, gid: gid)
    }

    mutating func file(_ path: String, _ content: [UInt8], mode: UInt32 = 0o644, uid: Int = 0, gid: Int = 0) {
        header(path, type: "0", size: content.count, mode: mode, uid: uid, gid: gid)
        bytes += content
        bytes += [UInt8](repeating: 0, count: (512 - content.count % 512) % 512)
    }

    mutating func dir(_ path: String, mode: UInt32 = 0o755, uid: Int = 0, gid: Int = 0) {
        header(path, type: "5", size: 0, mode: mode, uid: uid, gid: gid)
    }

    mutating func symlink(_ path: String, to target: String) { header(path, type: "2", size: 0, mode: 0o777, link: target) }
    mutating func hardlink(_ path: String, to target: String) { header(path, type: "1", size: 0, mode: 0o644, link: target) }
    mutating func fifo(_ path: String) { header(path, type: "6", size: 0, mode: 0o644) }
    mutating func whiteout(_ path: String) {
        let url = URL(fileURLWithPath: "/" + path)
        let parent = url.deletingLastPathComponent().path
        file((parent == "/" ? "" : String(parent.dropFirst()) + "/") + ".wh." + url.lastPathComponent, "")
    }
    mutating func opaque(_ dir: String) { file(dir + "/.wh..wh..opq", "") }

    mutating func header(_ path: String, type: Character, size: Int, mode: UInt32, uid: Int = 0, gid: Int = 0, link: String = "") {
        if path.utf8.count > 100 {
            let record = Self.paxRecord("path", path)
            header("PaxHeaders/x", type: "x", size: record.count, mode: 0o644)
            bytes += record
            bytes += [UInt8](repeating: 0, count: (512 - record.count % 512) % 512)
        }
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ at: Int, _ len: Int) {
            for (i, b) in s.utf8.prefix(len).enumerated() { h[at + i] = b }
        }
        func octal(_ v: Int, _ at: Int, _ len: Int) {
            let s = String(v, radix: 8)
            put(String(repeating: "0", count: max(0, len - 1 - s.count)) + s, at, len - 1)
        }
        put(String(path.utf8.prefix(100))!, 0, 100)
        octal(Int(mode), 100, 8)
        octal(uid, 108, 8)
        octal(gid, 116, 8)
        octal(size, 124, 12)
        octal(1_700_000_000, 136, 12)
        put("        ", 148, 8)
        h[156] = UInt8(ascii: type.unicodeScalars.first!)
        put(link, 157, 100)
        put("ustar\0", 257, 6)
        put("00", 263, 2)
        let sum = h.reduce(0) { $0 + Int($1) }
        let s = String(sum, radix: 8)
        put(String(repeating: "0", count: 6 - s.count) + s, 148, 6)
        h[154] = 0
        h[155] = 32
        bytes += h
    }

    static func paxRecord(_ key: String, _ value: String) -> [UInt8] {
        let body = " \(key)=\(value)\n"
        var len = body.utf8.count + 1
        while String(len).utf8.count + body.utf8.count != len { len = String(len).utf8.count + body.utf8.count }
        return Array("\(len)\(body)".utf8)
    }

    func finished() -> [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }
}

enum Gzip {
    static func compress(_ bytes: [UInt8]) throws -> [UInt8] {
        var buf = ByteBuffer(bytes: bytes)
        let out = try buf.compress(with: .gzip())
        return Array(buffer: out)
    }
}

/// An image made in memory: layers (uncompressed tars, sent gzipped), its config and manifest.
struct TestImage {
    var layers: [[UInt8]]
    var entrypoint: [String]? = nil
    var cmd: [String]? = ["sh"]
    var env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    var architecture = "amd64"
    var extraConfig: [String: Any] = [:]

    struct Blob {
        var data: Data
        var descriptor: Descriptor
    }

    func build() throws -> (config: Blob, layers: [Blob], manifest: Data, manifestDigest: Digest) {
        var layerBlobs: [Blob] = []
        var diffIDs: [String] = []
        for l in layers {
            let gz = Data(try Gzip.compress(l))
            layerBlobs.append(
                Blob(
                    data: gz, descriptor: Descriptor(mediaType: MediaType.ociLayerGzip, digest: Digest(hashing: gz), size: Int64(gz.count)))
            )
            diffIDs.append(Digest(hashing: l).description)
        }
        var cfg: [String: Any] = ["Env": env, "WorkingDir": "/", "ExposedPorts": ["80/tcp": [String: Any]()], "StopSignal": "SIGQUIT"]
        if let entrypoint { cfg["Entrypoint"] = entrypoint }
        if let cmd { cfg["Cmd"] = cmd }
        for (k, v) in extraConfig { cfg[k] = v }
        let config: [String: Any] = [
            "architecture": architecture, "os": "linux", "created": "2026-12-03T00:00:00Z",
            "config": cfg, "rootfs": ["type": "layers", "diff_ids": diffIDs],
        ]
        let configData = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])
        let configBlob = Blob(
            data: configData,
            descriptor: Descriptor(mediaType: MediaType.ociConfig, digest: Digest(hashing: configData), size: Int64(configData.count)))
        let manifest = ImageManifest(config: configBlob.descriptor, layers: layerBlobs.map(\.descriptor))
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let manifestData = try enc.encode(manifest)
        return (configBlob, layerBlobs, manifestData, Digest(hashing: manifestData))
    }
}

struct PushError: Error, CustomStringConvertible {
    var description: String
}

/// Pushes blobs and manifests with the distribution API's monolithic upload (what skopeo does, minus chunks).
enum Pusher {
    static func pushBlob(_ registry: String, _ repo: String, _ data: Data, _ digest: Digest) async throws {
        var post = HTTPClientRequest(url: "http://\(registry)/v2/\(repo)/blobs/uploads/")
        post.method = .POST
        let r = try await HTTPClient.shared.execute(post, timeout: .seconds(10))
        _ = try await r.body.collect(upTo: 1 << 20)
        guard r.status.code == 202, var location = r.headers.first(name: "Location") else {
            throw PushError(description: "upload start: \(r.status)")
        }
        if location.hasPrefix("/") { location = "http://\(registry)" + location }
        var put = HTTPClientRequest(url: location + (location.contains("?") ? "&" : "?") + "digest=\(digest)")
        put.method = .PUT
        put.headers.add(name: "Content-Type", value: "application/octet-stream")
        put.headers.add(name: "Content-Length", value: String(data.count))
        put.body = .bytes(ByteBuffer(bytes: data))
        let p = try await HTTPClient.shared.execute(put, timeout: .seconds(30))
        let body = try await p.body.collect(upTo: 1 << 20)
        guard p.status.code == 201 else { throw PushError(description: "blob put \(p.status): \(String(buffer: body))") }
    }

    static func pushManifest(_ registry: String, _ repo: String, _ ref: String, _ data: Data, mediaType: String) async throws {
        var put = HTTPClientRequest(url: "http://\(registry)/v2/\(repo)/manifests/\(ref)")
        put.method = .PUT
        put.headers.add(name: "Content-Type", value: mediaType)
        put.body = .bytes(ByteBuffer(bytes: data))
        let p = try await HTTPClient.shared.execute(put, timeout: .seconds(10))
        let body = try await p.body.collect(upTo: 1 << 20)
        guard p.status.code == 201 else { throw PushError(description: "manifest put \(p.status): \(String(buffer: body))") }
    }

    @discardableResult
    static func push(_ image: TestImage, to registry: String, repo: String, tag: String) async throws -> Digest {
        let b = try image.build()
        for blob in b.layers + [b.config] { try await pushBlob(registry, repo, blob.data, blob.descriptor.digest) }
        try await pushManifest(registry, repo, tag, b.manifest, mediaType: MediaType.ociManifest)
        return b.manifestDigest
    }
}

/// A temporary directory removed at the end of a test.
final class TempDir {
    let path: String
    init(_ tag: String = "meshimage") throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The busybox from busybox-static as a layer: /bin/busybox and a few applet links.
func busyboxLayer() throws -> [UInt8] {
    let bin = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "/bin/busybox")))
    var t = TarBuilder()
    t.dir("bin")
    t.file("bin/busybox", bin, mode: 0o755)
    for applet in ["sh", "ls", "cat", "echo", "wget", "ping"] { t.symlink("bin/\(applet)", to: "busybox") }
    t.dir("etc")
    t.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    t.dir("tmp", mode: 0o1777)
    return t.finished()
}
