import Foundation
import MeshValues
import Testing

@testable import MeshImage

@Suite struct TarTests {
    func entries(_ bytes: [UInt8]) throws -> [(TarEntry, [UInt8])] {
        let r = TarReader(MemorySource(bytes))
        var out: [(TarEntry, [UInt8])] = []
        while let e = try r.next() {
            var data: [UInt8] = []
            while true {
                let c = try r.readData(max: 7)  // small reads cross chunk boundaries
                if c.isEmpty { break }
                data += c
            }
            out.append((e, data))
        }
        return out
    }

    @Test func readsWhatWasWritten() throws {
        var t = TarBuilder()
        t.dir("etc", mode: 0o755)
        t.file("etc/hosts", "127.0.0.1 localhost\n", mode: 0o4755, uid: 1000, gid: 50)
        t.symlink("etc/link", to: "/etc/hosts")
        t.hardlink("etc/hard", to: "etc/hosts")
        t.fifo("run.fifo")
        let long = String(repeating: "d/", count: 80) + "file"
        t.file(long, "x")
        let e = try entries(t.finished())
        #expect(e.map(\.0.path) == ["etc", "etc/hosts", "etc/link", "etc/hard", "run.fifo", long])
        #expect(e.map(\.0.kind) == [.directory, .file, .symlink, .hardlink, .fifo, .file])
        #expect(e[1].0.mode == 0o4755 && e[1].0.uid == 1000 && e[1].0.gid == 50 && e[1].0.size == 20)
        #expect(String(decoding: e[1].1, as: UTF8.self) == "127.0.0.1 localhost\n")
        #expect(e[2].0.linkTarget == "/etc/hosts")
        #expect(e[3].0.linkTarget == "etc/hosts")
        #expect(e[5].1 == Array("x".utf8))
    }

    @Test func skipsUnreadData() throws {
        var t = TarBuilder()
        t.file("a", String(repeating: "a", count: 1000))
        t.file("b", "b")
        let r = TarReader(MemorySource(t.finished()))
        #expect(try r.next()?.path == "a")
        #expect(try r.next()?.path == "b")
        #expect(try r.readData() == Array("b".utf8))
        #expect(try r.next() == nil)
    }

    @Test func base256AndPax() throws {
        var t = TarBuilder()
        t.file("f", "12345")
        var bytes = t.finished()
        // Rewrite the size field as GNU base-256 (0x80 then big-endian), fix the checksum.
        for i in 124..<136 { bytes[i] = 0 }
        bytes[124] = 0x80
        bytes[135] = 5
        Self.fixChecksum(&bytes, at: 0)
        let e = try entries(bytes)
        #expect(e.first?.0.size == 5 && e.first?.1 == Array("12345".utf8))

        let pax = try TarReader.parsePax(TarBuilder.paxRecord("path", "a/b") + TarBuilder.paxRecord("SCHILY.xattr.user.x", "v"))
        #expect(pax["path"] == Array("a/b".utf8))
        #expect(throws: TarError.self) { try TarReader.parsePax(Array("99 path=x\n".utf8)) }
        #expect(throws: TarError.self) { try TarReader.parsePax(Array("5 a\n".utf8)) }
    }

    static func fixChecksum(_ b: inout [UInt8], at off: Int) {
        for i in 148..<156 { b[off + i] = 32 }
        let sum = b[off..<off + 512].reduce(0) { $0 + Int($1) }
        let s = String(sum, radix: 8)
        let padded = String(repeating: "0", count: 6 - s.count) + s
        for (i, c) in padded.utf8.enumerated() { b[off + 148 + i] = c }
        b[off + 154] = 0
    }

    @Test func badInputIsAnError() throws {
        var t = TarBuilder()
        t.file("f", String(repeating: "z", count: 600))
        let good = t.finished()
        var badSum = good
        badSum[0] = UInt8(ascii: "g")
        #expect(throws: TarError.badChecksum(offset: 0)) { try entries(badSum) }
        #expect(throws: TarError.truncated(entry: "f")) { try entries(Array(good.prefix(700))) }
        #expect(throws: TarError.truncated(entry: nil)) { try entries(Array(good.prefix(100))) }
        var badType = good
        badType[156] = UInt8(ascii: "Z")
        Self.fixChecksum(&badType, at: 0)
        #expect(throws: TarError.unsupportedType("Z", path: "f")) { try entries(badType) }
        var badSize = good
        badSize[124] = UInt8(ascii: "9")
        Self.fixChecksum(&badSize, at: 0)
        #expect(throws: TarError.badNumber(field: "size", offset: 0)) { try entries(badSize) }
        // Empty input and a lone end block are empty archives.
        #expect(try entries([]).isEmpty)
        #expect(try entries([UInt8](repeating: 0, count: 512)).isEmpty)
    }

    /// Random bytes, and valid archives with random bytes changed, must give entries or an error:
    /// never a crash, a hang or an allocation the input did not pay for.
    @Test func garbage() throws {
        var rng = SplitMix64(seed: 14)
        var t = TarBuilder()
        t.dir("d")
        t.file("d/f", String(repeating: "q", count: 3000))
        t.symlink("d/l", to: "f")
        t.file(String(repeating: "n", count: 150), "long")
        let valid = t.finished()
        var errors = 0
        for round in 0..<3000 {
            var b: [UInt8]
            if round % 3 == 0 {
                b = (0..<Int.random(in: 0..<2048, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                b = valid
                for _ in 0..<Int.random(in: 1...8, using: &rng) {
                    b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                if round % 3 == 2 { Self.fixChecksum(&b, at: 0) }  // get past the checksum, into the fields
                if round % 7 == 0 { b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng))) }
            }
            do { _ = try entries(b) } catch is TarError { errors += 1 }
        }
        #expect(errors > 1000)
    }

    @Test func gzipGarbage() throws {
        let dir = try TempDir()
        var rng = SplitMix64(seed: 7)
        var t = TarBuilder()
        t.file("f", String(repeating: "gz", count: 5000))
        let gz = try Gzip.compress(t.finished())
        var errors = 0
        for round in 0..<300 {
            var b = gz
            if round % 2 == 0 {
                for _ in 0..<4 { b[Int.random(in: 0..<b.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng) }
            } else {
                b = (0..<Int.random(in: 1..<600, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            let path = dir.path + "/l\(round)"
            _ = FileManager.default.createFile(atPath: path, contents: Data(b))
            do {
                let src = try LayerSource(path: path, compression: .gzip)
                let r = TarReader(src)
                while try r.next() != nil {}
                try r.drain()
            } catch is LayerSource.Failure {
                errors += 1
            } catch is TarError {
                errors += 1
            }
        }
        #expect(errors > 200)
    }

    @Test func layerSourceHashesUncompressedBytes() throws {
        let dir = try TempDir()
        var t = TarBuilder()
        t.file("big", (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let tar = t.finished()
        // Two gzip members one after the other are one stream, as in Go's reader.
        let gz = try Gzip.compress(Array(tar.prefix(100_000))) + (try Gzip.compress(Array(tar.dropFirst(100_000))))
        _ = FileManager.default.createFile(atPath: dir.path + "/l", contents: Data(gz))
        let src = try LayerSource(path: dir.path + "/l", compression: .gzip)
        let r = TarReader(src)
        while try r.next() != nil {}
        try r.drain()
        #expect(src.uncompressedBytes == Int64(tar.count))
        #expect(src.digest == Digest(hashing: tar))
    }
}

@Suite struct ManifestTests {
    let d1 = Digest(hashing: Array("1".utf8)), d2 = Digest(hashing: Array("2".utf8)), d3 = Digest(hashing: Array("3".utf8))

    func index(_ entries: [(Digest, Platform?)], type: String = MediaType.ociManifest) -> ImageIndex {
        ImageIndex(manifests: entries.map { Descriptor(mediaType: type, digest: $0.0, size: 10, platform: $0.1) })
    }

    @Test func choosesLinuxAMD64() {
        let i = index([
            (d1, Platform(architecture: "arm64", os: "linux", variant: "v8")), (d2, Platform(architecture: "amd64", os: "linux")),
            (d3, Platform(architecture: "amd64", os: "windows")),
        ])
        #expect(i.manifest(for: .linuxAMD64)?.digest == d2)
        #expect(i.manifest(for: Platform(architecture: "arm64", os: "linux", variant: "v8"))?.digest == d1)
        #expect(i.manifest(for: Platform(architecture: "arm64", os: "linux", variant: "v7")) == nil)
        #expect(i.manifest(for: Platform(architecture: "s390x", os: "linux")) == nil)
        // BuildKit attestations (unknown/unknown) never match; the first matching entry wins.
        let j = index([(d1, Platform(architecture: "unknown", os: "unknown")), (d2, .linuxAMD64), (d3, .linuxAMD64)])
        #expect(j.manifest(for: .linuxAMD64)?.digest == d2)
    }

    @Test func decodesByMediaType() throws {
        let m = ImageManifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: d1, size: 3), layers: [])
        let body = try JSONEncoder().encode(m)
        #expect(try ManifestDocument.decode(body, contentType: nil) == .manifest(m))
        let list = #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#
        guard case .index = try ManifestDocument.decode(Data(list.utf8), contentType: nil) else {
            Issue.record("not an index")
            return
        }
        // No mediaType field: the Content-Type decides, then the shape.
        let bare = #"{"schemaVersion":2,"manifests":[]}"#
        guard case .index = try ManifestDocument.decode(Data(bare.utf8), contentType: "application/vnd.oci.image.index.v1+json") else {
            Issue.record("not an index")
            return
        }
        guard case .index = try ManifestDocument.decode(Data(bare.utf8), contentType: nil) else {
            Issue.record("not an index")
            return
        }
        let v1 = #"{"schemaVersion":1,"name":"x"}"#
        #expect(throws: ManifestDocument.DecodeError.unsupportedMediaType(MediaType.dockerSchema1Signed)) {
            try ManifestDocument.decode(Data(v1.utf8), contentType: MediaType.dockerSchema1Signed)
        }
        let missing = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#
        #expect(throws: ManifestDocument.DecodeError.malformed(mediaType: MediaType.ociManifest, reason: "missing config")) {
            try ManifestDocument.decode(Data(missing.utf8), contentType: nil)
        }
        let badDigest = #"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:zz","size":1},"layers":[]}"#
        #expect(throws: ManifestDocument.DecodeError.self) { try ManifestDocument.decode(Data(badDigest.utf8), contentType: nil) }
    }

    @Test func imageConfigValues() throws {
        let json = """
            {"architecture":"amd64","os":"linux","config":{"User":"redis","Env":["A=1"],"Entrypoint":["/e"],"Cmd":["c"],
             "WorkingDir":"/data","ExposedPorts":{"6379/tcp":{},"53/udp":{}},"Volumes":{"/data":{}},"StopSignal":"SIGINT",
             "Labels":{"k":"v"}},"rootfs":{"type":"layers","diff_ids":["\(d1)"]}}
            """
        let c = try ImageConfigFile.decode(Data(json.utf8))
        #expect(
            c.imageConfig
                == ImageConfig(
                    entrypoint: ["/e"], cmd: ["c"], env: ["A=1"], workingDir: "/data", user: "redis", exposedPorts: ["53/udp", "6379/tcp"],
                    stopSignal: "SIGINT", labels: ["k": "v"], volumes: ["/data"]))
        #expect(c.rootfs.diffIDs == [d1])
        // HEALTHCHECK as Docker writes it (nanoseconds); a config stored before it was read decodes without one.
        let checked = """
            {"architecture":"amd64","os":"linux","config":{"Healthcheck":{"Test":["CMD-SHELL","redis-cli ping"],
             "Interval":5000000000,"Retries":4}},"rootfs":{"type":"layers","diff_ids":[]}}
            """
        #expect(
            try ImageConfigFile.decode(Data(checked.utf8)).imageConfig.healthcheck
                == .init(test: ["CMD-SHELL", "redis-cli ping"], intervalNanos: 5_000_000_000, retries: 4))
        let stored = #"{"env":[],"workingDir":"","user":"","exposedPorts":[],"labels":{},"volumes":[]}"#
        #expect(try JSONDecoder().decode(ImageConfig.self, from: Data(stored.utf8)).healthcheck == nil)
        let empty = try ImageConfigFile.decode(
            Data(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8))
        #expect(empty.imageConfig == ImageConfig())
        #expect(throws: ImageConfigFile.DecodeError.notLayers("x")) {
            try ImageConfigFile.decode(Data(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"x","diff_ids":[]}}"#.utf8))
        }
    }

    /// Random bytes and mutated documents give typed errors, never a crash.
    @Test func garbage() throws {
        var rng = SplitMix64(seed: 99)
        let m = ImageManifest(
            config: Descriptor(mediaType: MediaType.ociConfig, digest: d1, size: 3),
            layers: [
                Descriptor(mediaType: MediaType.ociLayerGzip, digest: d2, size: 9)
            ])
        let valid = Array(try JSONEncoder().encode(m))
        let config = Array(
            #"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":["\#(d1)"]}}"#.utf8)
        var failures = 0
        for round in 0..<3000 {
            var b = round % 2 == 0 ? valid : config
            if round % 5 == 0 {
                b = (0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            } else {
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 32...126, using: &rng)
                }
            }
            do { _ = try ManifestDocument.decode(Data(b), contentType: nil) } catch { failures += 1 }
            do { _ = try ImageConfigFile.decode(Data(b)) } catch { failures += 1 }
        }
        #expect(failures > 3000)
    }
}
