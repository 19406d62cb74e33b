import MeshKernel

/// A sandbox's vxlan0. It is created in the node namespace, so its UDP socket stays on the
/// underlay, under a staging name (`Naming.vxlanStaging`), then moved into the sandbox and
/// renamed: two sandboxes of one node never meet under one name. A change of MTU alone is set
/// in place; any other change remakes the device, which takes its neighbours and FDB with it.
enum SandboxVXLAN {
    /// The same device, another MTU: set in place, nothing else is lost.
    static func onlyMTUDiffers(_ have: SandboxModel.VXLAN?, _ want: SandboxModel.VXLAN) -> Bool {
        guard let o = have else { return false }
        return o.vni == want.vni && o.local == want.local && o.port == want.port && o.mac == want.mac
    }

    /// Makes vxlan0 in `sandbox`; `undo` gets its removal once it exists there.
    static func make(
        _ v: SandboxModel.VXLAN, sandbox h: Reconciler.Handles, node: Reconciler.Handles, undo: inout [RouteOperation]
    ) async throws(KernelError) {
        try? await h.netlink.linkDel(.name(Naming.vxlan))
        let staging = Naming.vxlanStaging(vni: v.vni)
        // Either end may hold a staging link from an apply that was killed mid-way.
        try? await node.netlink.linkDel(.name(staging))
        try? await h.netlink.linkDel(.name(staging))
        try await node.netlink.linkAdd(
            LinkSpec(name: staging, kind: .vxlan(VXLANAttributes(vni: v.vni, local: v.local, port: v.port)), mtu: v.mtu, mac: v.mac))
        do {
            try await node.netlink.linkSetNamespace(.name(staging), h.namespace)
        } catch {
            try? await node.netlink.linkDel(.name(staging))
            throw error
        }
        try await h.netlink.apply([.linkSet(.name(staging), LinkChange(name: Naming.vxlan))])
        try await h.netlink.linkSetUp(.name(Naming.vxlan))
        undo.append(.linkDel(.name(Naming.vxlan)))
    }
}
