/// NetworkDB-style tables on the node: local writes by the owner, remote versions merged by
/// Lamport order, watcher events that follow the owner's liveness.
extension GossipNode {
    /// Current visible entries (what a watcher that started now would have been told).
    public func entries(network: String, table: String? = nil) -> [EntryKey: TableEntry] {
        var out: [EntryKey: TableEntry] = [:]
        for k in store.keys(network: network) where table == nil || k.table == table {
            if let e = store[k], isVisible(e) { out[k] = e }
        }
        return out
    }

    /// Every version held, tombstones included (for convergence checks).
    public func rawEntries(network: String) -> [EntryKey: TableEntry] {
        var out: [EntryKey: TableEntry] = [:]
        for k in store.keys(network: network) { out[k] = store[k] }
        return out
    }

    func isVisible(_ e: TableEntry) -> Bool {
        !e.deleted && (e.owner == name || (members[e.owner]?.state.isLive ?? true))
    }

    /// Creates or updates an entry owned by this node.
    public mutating func set(network: String, table: String, key: String, value: [UInt8], at now: Duration) throws(TableError)
        -> [GossipOutput]
    {
        try checkWrite(network: network, table: table, key: key, value: value)
        let k = EntryKey(network: network, table: table, key: key)
        if let e = store[k], !e.deleted, e.owner != name, members[e.owner]?.state.isLive ?? true { throw .ownedBy(e.owner) }
        clock += 1
        commitLocal(TableEvent(ltime: clock, deleted: false, owner: name, network: network, table: table, key: key, value: value), at: now)
        return takeOutbox()
    }

    /// Deletes an entry this node owns, leaving a tombstone.
    public mutating func delete(network: String, table: String, key: String, at now: Duration) throws(TableError) -> [GossipOutput] {
        guard networks.contains(network) else { throw .notOnNetwork(network) }
        let k = EntryKey(network: network, table: table, key: key)
        guard let e = store[k], !e.deleted else { throw .notFound }
        guard e.owner == name else { throw .ownedBy(e.owner) }
        clock += 1
        commitLocal(TableEvent(ltime: clock, deleted: true, owner: name, network: network, table: table, key: key, value: []), at: now)
        return takeOutbox()
    }

    private func checkWrite(network: String, table: String, key: String, value: [UInt8]) throws(TableError) {
        guard networks.contains(network) else { throw .notOnNetwork(network) }
        let l = config.limits
        for s in [network, table, key] where s.utf8.count > l.maxName { throw .tooLarge("name \(s.utf8.count) > \(l.maxName) bytes") }
        if value.count > l.maxValue { throw .tooLarge("value \(value.count) > \(l.maxValue) bytes") }
    }

    private mutating func commitLocal(_ t: TableEvent, at now: Duration) {
        store(t, at: now)
        enqueueTable(t)
    }

    /// Stores a version and tells watchers what they can now see differently.
    private mutating func store(_ t: TableEvent, at now: Duration) {
        let k = EntryKey(network: t.network, table: t.table, key: t.key)
        let before = store[k]
        let wasVisible = before.map(isVisible) ?? false
        let e = TableEntry(
            owner: t.owner, ltime: t.ltime, value: t.value, deleted: t.deleted,
            reapAt: t.deleted ? now + config.tombstoneReap : nil)
        store.put(k, e)
        let visible = isVisible(e)
        if visible && !wasVisible {
            emit(.table(TableChange(kind: .create, network: t.network, table: t.table, key: t.key, owner: t.owner, value: t.value)))
        } else if visible && wasVisible && (before!.value != t.value || before!.owner != t.owner) {
            emit(.table(TableChange(kind: .update, network: t.network, table: t.table, key: t.key, owner: t.owner, value: t.value)))
        } else if !visible && wasVisible {
            emit(
                .table(
                    TableChange(kind: .delete, network: t.network, table: t.table, key: t.key, owner: before!.owner, value: before!.value)))
        }
    }

    /// A version from another node (gossip or push/pull). Accepted for any network we carry,
    /// whatever we believe about the owner's network membership: rejecting it there is how
    /// NetworkDB lost entries for good (moby#53437).
    mutating func applyRemoteEntry(_ t: TableEvent, rebroadcast: Bool, at now: Duration) {
        guard networks.contains(t.network) else { return }
        let k = EntryKey(network: t.network, table: t.table, key: t.key)
        clock = max(clock, t.ltime)
        if t.owner == name {
            // Our own entry, newer than what we hold: written in a previous life of this node.
            // Outbid it with what we hold now, or a tombstone, so the stale value dies everywhere.
            if let mine = store[k], mine.owner == name, mine.ltime >= t.ltime { return }
            clock += 1
            if let mine = store[k], mine.owner == name, !mine.deleted {
                commitLocal(
                    TableEvent(
                        ltime: clock, deleted: false, owner: name, network: t.network, table: t.table, key: t.key, value: mine.value),
                    at: now)
            } else {
                commitLocal(
                    TableEvent(ltime: clock, deleted: true, owner: name, network: t.network, table: t.table, key: t.key, value: []), at: now
                )
            }
            return
        }
        if let e = store[k], !e.isOlder(than: t) { return }
        store(t, at: now)
        if rebroadcast { enqueueTable(t) }
    }

    /// The owner died or left: hide its entries from watchers at once (kept, to be restored).
    mutating func withdrawEntries(owner: String) {
        for k in store.keys(owner: owner) {
            guard let e = store[k], !e.deleted else { continue }
            emit(.table(TableChange(kind: .delete, network: k.network, table: k.table, key: k.key, owner: owner, value: e.value)))
        }
    }

    /// The owner came back: show its entries again.
    mutating func restoreEntries(owner: String) {
        for k in store.keys(owner: owner) {
            guard let e = store[k], !e.deleted else { continue }
            emit(.table(TableChange(kind: .create, network: k.network, table: k.table, key: k.key, owner: owner, value: e.value)))
        }
    }

    mutating func dropEntries(owner: String) {
        for k in store.keys(owner: owner) { store.remove(k) }
    }

    mutating func reap(at now: Duration) {
        _ = store.reap(at: now)
        reapMembers(at: now)
    }
}
