import CMeshXattr
import Foundation
import Testing

@testable import MeshImage

#if canImport(Glibc)
    import Glibc
#endif

func lstatOf(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

func readText(_ path: String) -> String? { (try? String(contentsOfFile: path, encoding: .utf8)) }

@Suite struct UnpackTests {
    func unpack(_ t: TarBuilder, into dir: String, mode: LayerUnpacker.WhiteoutMode, lowers: [String] = []) throws -> LayerUnpacker.Stats {
        try LayerUnpacker(root: dir, mode: mode, lowerDirs: lowers).unpack(TarReader(MemorySource(t.finished())))
    }

    @Test func filesModesOwnersLinks() throws {
        let d = try TempDir()
        var t = TarBuilder()
        t.dir("usr", mode: 0o755)
        t.dir("usr/bin", mode: 0o555)  // read-only, yet gets entries after it
        t.file("usr/bin/tool", "#!/bin/sh\n", mode: 0o4755, uid: 1000, gid: 1000)
        t.hardlink("usr/bin/tool2", to: "usr/bin/tool")
        t.symlink("usr/bin/abs", to: "/usr/bin/tool")
        t.file("deep/er/file", "auto-made parents")
        t.fifo("run/fifo")
        t.file("etc/x", "old")
        t.file("etc/x", "new")  // a later entry replaces an earlier one
        let stats = try unpack(t, into: d.path, mode: .apply)
        #expect(stats.entries == 9)
        let tool = try #require(lstatOf(d.path + "/usr/bin/tool"))
        #expect(tool.st_mode & 0o7777 == 0o4755)
        #expect(tool.st_uid == 1000 && tool.st_gid == 1000)
        #expect(tool.st_mtim.tv_sec == 1_700_000_000)
        #expect(lstatOf(d.path + "/usr/bin/tool2")?.st_ino == tool.st_ino)
        #expect(try UnpackTests.link(d.path + "/usr/bin/abs") == "/usr/bin/tool")
        #expect((lstatOf(d.path + "/usr/bin")?.st_mode ?? 0) & 0o7777 == 0o555)
        #expect(readText(d.path + "/deep/er/file") == "auto-made parents")
        #expect((lstatOf(d.path + "/deep")?.st_mode ?? 0) & 0o777 == 0o755)
        #expect((lstatOf(d.path + "/run/fifo")?.st_mode ?? 0) & S_IFMT == S_IFIFO)
        #expect(readText(d.path + "/etc/x") == "new")
    }

    static func link(_ p: String) throws -> String { try LayerUnpacker.readLink(p) }

    @Test func traversalRefused() throws {
        let outer = try TempDir()
        let root = outer.path + "/root"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for path in ["../escape", "a/../../escape", "/../escape"] {
            var t = TarBuilder()
            t.file(path, "x")
            #expect(throws: LayerUnpacker.Failure.escapes(path)) { try unpack(t, into: root, mode: .apply) }
        }
        var h = TarBuilder()
        h.hardlink("h", to: "../../etc/passwd")
        #expect(throws: LayerUnpacker.Failure.escapes("../../etc/passwd")) { try unpack(h, into: root, mode: .apply) }
        #expect(!FileManager.default.fileExists(atPath: outer.path + "/escape"))
        // "a/../b" stays inside and is fine.
        var ok = TarBuilder()
        ok.file("a/../b", "inside")
        _ = try unpack(ok, into: root, mode: .apply)
        #expect(readText(root + "/b") == "inside")
    }

    /// A whiteout hides an entry of its own directory only: `.wh...` (`..`), `.wh..` (`.`) and `.wh.`
    /// would delete the directory itself or its parent, outside the layer (found by review).
    @Test func whiteoutsNamingTheDirectoryOrItsParentAreRefused() throws {
        let outer = try TempDir()
        let root = outer.path + "/root"
        try FileManager.default.createDirectory(atPath: root + "/d", withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: outer.path + "/sibling"))
        for name in [".wh...", "d/.wh..", ".wh."] {
            var t = TarBuilder()
            t.file(name, "")
            for mode in [LayerUnpacker.WhiteoutMode.apply, .overlay] {
                #expect(throws: LayerUnpacker.Failure.escapes(name)) { try unpack(t, into: root, mode: mode) }
            }
        }
        #expect(readText(outer.path + "/sibling") == "keep")
        #expect(FileManager.default.fileExists(atPath: root + "/d"))
    }

    /// A hardlink to a lower layer's file is copied up from that layer, its path resolved inside it: a
    /// lower layer's `x -> <outside>` must not make `x/secret` the host's file (found by review).
    @Test func hardlinkCopyUpResolvesInsideTheLowerLayer() throws {
        let outer = try TempDir()
        let lower = outer.path + "/lower"
        let upper = outer.path + "/upper"
        let host = outer.path + "/host"
        for d in [lower, upper, host] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try Data("host secret".utf8).write(to: URL(fileURLWithPath: host + "/secret"))
        var l1 = TarBuilder()
        l1.symlink("x", to: host)  // absolute: inside the layer it means <lower><host>
        l1.file("real/file", "from the image")
        _ = try unpack(l1, into: lower, mode: .overlay)
        var l2 = TarBuilder()
        l2.hardlink("y", to: "x/secret")
        #expect(throws: LayerUnpacker.Failure.hardlinkTargetMissing(path: "y", target: "x/secret")) {
            try unpack(l2, into: upper, mode: .overlay, lowers: [lower])
        }
        #expect(!FileManager.default.fileExists(atPath: upper + "/y"))
        // A real lower file is still copied up.
        var l3 = TarBuilder()
        l3.hardlink("z", to: "real/file")
        _ = try unpack(l3, into: upper, mode: .overlay, lowers: [lower])
        #expect(readText(upper + "/z") == "from the image")
    }

    /// A symlink met on the way is resolved as if the layer's directory were `/`: an absolute link
    /// or one that climbs with ../ still lands inside.
    @Test func symlinksResolvedInsideTheRoot() throws {
        let outer = try TempDir()
        let root = outer.path + "/root"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var t = TarBuilder()
        t.symlink("abs", to: outer.path)  // an absolute link to the real parent
        t.file("abs/planted", "x")
        t.symlink("up", to: "../../../..")
        t.file("up/planted2", "y")
        t.symlink("loop", to: "loop")
        _ = try unpack(t, into: root, mode: .apply)
        #expect(!FileManager.default.fileExists(atPath: outer.path + "/planted"))
        #expect(readText(root + outer.path + "/planted") == "x")
        #expect(readText(root + "/planted2") == "y")
        var l = TarBuilder()
        l.file("loop/x", "z")
        #expect(throws: LayerUnpacker.Failure.tooManySymlinks("loop/x")) { try unpack(l, into: root, mode: .apply) }
        var f = TarBuilder()
        f.file("planted2/x", "z")
        #expect(throws: LayerUnpacker.Failure.notADirectory("planted2/x")) { try unpack(f, into: root, mode: .apply) }
    }

    @Test func whiteoutsApplied() throws {
        let d = try TempDir()
        var base = TarBuilder()
        base.file("etc/keep", "k")
        base.file("etc/gone", "g")
        base.file("var/lib/a", "a")
        base.file("var/lib/b", "b")
        base.file("opt/tree/x/y", "deep")
        _ = try unpack(base, into: d.path, mode: .apply)
        var top = TarBuilder()
        top.whiteout("etc/gone")
        top.dir("var/lib")
        top.opaque("var/lib")
        top.file("var/lib/c", "c")
        top.whiteout("opt/tree")
        top.whiteout("never/there")
        let stats = try unpack(top, into: d.path, mode: .apply)
        #expect(stats.whiteouts == 3 && stats.opaques == 1)
        #expect(readText(d.path + "/etc/keep") == "k")
        #expect(lstatOf(d.path + "/etc/gone") == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.path + "/var/lib") == ["c"])
        #expect(lstatOf(d.path + "/opt/tree") == nil)
        #expect(lstatOf(d.path + "/etc/.wh.gone") == nil)
    }

    /// In overlay form a whiteout is a 0/0 character device and an opaque directory carries
    /// trusted.overlay.opaque=y (needs root, as the daemon has).
    @Test(.enabled(if: geteuid() == 0)) func whiteoutsInOverlayForm() throws {
        let lower = try TempDir(), upper = try TempDir()
        var base = TarBuilder()
        base.file("shared/lib.so", "lib")
        _ = try unpack(base, into: lower.path, mode: .overlay)
        var top = TarBuilder()
        top.whiteout("etc/gone")
        top.opaque("var/lib")
        top.hardlink("bin/lib-link", to: "shared/lib.so")  // a link into the layer below is copied up
        _ = try unpack(top, into: upper.path, mode: .overlay, lowers: [lower.path])
        let wh = try #require(lstatOf(upper.path + "/etc/gone"))
        #expect(wh.st_mode & S_IFMT == S_IFCHR && wh.st_rdev == 0)
        var v = [UInt8](repeating: 0, count: 4)
        let n = lgetxattr(upper.path + "/var/lib", "trusted.overlay.opaque", &v, 4)
        #expect(n == 1 && v[0] == UInt8(ascii: "y"))
        #expect(readText(upper.path + "/bin/lib-link") == "lib")
        var missing = TarBuilder()
        missing.hardlink("x", to: "no/such")
        #expect(throws: LayerUnpacker.Failure.hardlinkTargetMissing(path: "x", target: "no/such")) {
            try unpack(missing, into: upper.path, mode: .overlay, lowers: [lower.path])
        }
    }

    /// An overlay of two unpacked layers shows the merged tree: upper files over lower ones,
    /// whiteouts and opaque directories hiding the lower content; writes go to the container's upper.
    @Test(.enabled(if: geteuid() == 0)) func overlayRootfsMerges() throws {
        let d = try TempDir()
        let l1 = d.path + "/l1", l2 = d.path + "/l2"
        for p in [l1, l2] { try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true) }
        var base = TarBuilder()
        base.file("etc/os-release", "base")
        base.file("etc/gone", "g")
        base.file("data/old1", "1")
        base.file("data/old2", "2")
        _ = try unpack(base, into: l1, mode: .overlay)
        var top = TarBuilder()
        top.file("etc/os-release", "top")
        top.whiteout("etc/gone")
        top.dir("data")
        top.opaque("data")
        top.file("data/new", "n")
        _ = try unpack(top, into: l2, mode: .overlay, lowers: [l1])
        let container = d.path + "/c1"
        try FileManager.default.createDirectory(atPath: container, withIntermediateDirectories: true)
        let fs = OverlayRootfs(containerDirectory: container, lowerDirs: [l2, l1])
        try fs.mount()
        defer { try? fs.unmount() }
        #expect(fs.isMounted)
        #expect(readText(fs.path + "/etc/os-release") == "top")
        #expect(lstatOf(fs.path + "/etc/gone") == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: fs.path + "/data") == ["new"])
        try "written".write(toFile: fs.path + "/etc/new-file", atomically: false, encoding: .utf8)
        #expect(readText(fs.upper + "/etc/new-file") == "written")
        #expect(lstatOf(l2 + "/etc/new-file") == nil)
        try fs.unmount()
        #expect(!fs.isMounted)
    }
}
