import Foundation
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// The children of this process that some thread waits for by pid (`waitpid(pid)`): every
/// process `Spawn.start` makes, and the process of a TTY exec once it is known. The orphan
/// reaper leaves these alone, so a task's exit code is never stolen from its reaper thread.
///
/// One per process, as the kernel's table of children is one per process: a reaper in one
/// object and spawns registered in another could not agree on who waits for what.
public final class ChildRegistry: Sendable {
    public static let shared = ChildRegistry()

    struct State {
        /// By pid, how many waiters (a pid freed by one waiter may at once be a new child's).
        var waited: [pid_t: Int] = [:]
        /// While above zero nothing is reaped: a TTY exec's process becomes our child when its
        /// `runc exec -d` exits, before its pid file is read and the pid registered.
        var holds = 0
    }

    let state = Mutex(State())

    public init() {}

    /// Runs `spawn` (which returns the new child's pid, or nil when nothing started) with the
    /// registry locked, so no scan can see the child before it is registered.
    func spawning(_ spawn: () -> pid_t?) -> pid_t? {
        state.withLock { s in
            guard let pid = spawn() else { return nil }
            s.waited[pid, default: 0] += 1
            return pid
        }
    }

    /// A process that became our child without `Spawn` (a TTY exec's): someone waits for it now.
    func adopt(_ pid: pid_t) { state.withLock { $0.waited[pid, default: 0] += 1 } }

    /// Its waiter has reaped it (or given up on it).
    func reaped(_ pid: pid_t) {
        state.withLock { s in
            guard let n = s.waited[pid] else { return }
            s.waited[pid] = n > 1 ? n - 1 : nil
        }
    }

    func hold() { state.withLock { $0.holds += 1 } }
    func release() { state.withLock { $0.holds -= 1 } }

    public func isWaited(_ pid: pid_t) -> Bool { state.withLock { $0.waited[pid] != nil } }
}

/// Reaps zombies among this process's children that nobody waits for: what a child subreaper
/// inherits (the daemonized grandchildren of a process task, a container's init whose `runc run`
/// died, a TTY exec's process whose session was dropped). Only zombies listed in
/// `/proc/self/task/*/children` and not in the `ChildRegistry` are reaped, each with
/// `waitpid(pid, WNOHANG)` under the registry's lock, so a registered child is never taken.
public final class OrphanReaper: Sendable {
    private let registry: ChildRegistry
    private let eligible: @Sendable (pid_t) -> Bool
    private let running = Mutex(true)
    private let reapedCount = Mutex(0)

    /// `eligible` narrows what may be reaped (tests keep to their own process group: the
    /// test process also has children that Foundation's Process waits for).
    public init(registry: ChildRegistry = .shared, eligible: @escaping @Sendable (pid_t) -> Bool = { _ in true }) {
        self.registry = registry
        self.eligible = eligible
    }

    /// A thread that does one pass every `interval` until `stop()`.
    @discardableResult
    public static func start(
        interval: Duration = .seconds(1), registry: ChildRegistry = .shared, eligible: @escaping @Sendable (pid_t) -> Bool = { _ in true }
    ) -> OrphanReaper {
        let reaper = OrphanReaper(registry: registry, eligible: eligible)
        let micros = UInt32(clamping: interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000)
        let thread = Thread {
            while reaper.running.withLock({ $0 }) {
                reaper.reapOnce()
                usleep(micros)
            }
        }
        thread.name = "orphan-reaper"
        thread.start()
        return reaper
    }

    public func stop() { running.withLock { $0 = false } }

    /// How many orphans this reaper has collected.
    public var reaped: Int { reapedCount.withLock { $0 } }

    /// One pass; returns the pids it reaped.
    @discardableResult
    public func reapOnce() -> [pid_t] {
        var got: [pid_t] = []
        for pid in Self.children() where eligible(pid) && Self.isZombie(pid) {
            let took = registry.state.withLock { s -> Bool in
                guard s.holds == 0, s.waited[pid] == nil else { return false }
                var status: Int32 = 0
                return waitpid(pid, &status, WNOHANG) == pid
            }
            if took { got.append(pid) }
        }
        if !got.isEmpty { reapedCount.withLock { $0 += got.count } }
        return got
    }

    /// Every thread's children (`CONFIG_PROC_CHILDREN`): a child belongs to the thread that made it.
    static func children() -> [pid_t] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        var all: [pid_t] = []
        for t in tasks {
            let text = (try? String(contentsOfFile: "/proc/self/task/\(t)/children", encoding: .utf8)) ?? ""
            all += text.split(separator: " ").compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        return all
    }

    /// State `Z` in `/proc/<pid>/stat` (the field after the command name, which may hold spaces and parentheses).
    static func isZombie(_ pid: pid_t) -> Bool { field(pid, 0) == "Z" }

    /// The process group of `pid` (a zombie keeps it).
    public static func processGroup(_ pid: pid_t) -> pid_t? { field(pid, 2).flatMap { pid_t($0) } }

    /// Fields after the command: 0 = state, 1 = ppid, 2 = pgrp.
    static func field(_ pid: pid_t, _ index: Int) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let rest = text[text.index(after: close)...].split(separator: " ")
        return index < rest.count ? String(rest[index]) : nil
    }
}
