import Foundation
import MeshControl
import MeshDataplane
import MeshKernel

/// A node's session with its manager over the control channel: says who it is, runs every
/// assignment it receives with the agent (other nodes' tasks taken from the endpoint directory,
/// which it keeps publishing its own tasks to), and reports its tasks' states whenever they
/// change. Returns when the manager closes the connection.
public actor AgentSession {
    public let nodeID: String
    public let agent: NodeAgent
    public let directory: EndpointDirectory?
    public let statusInterval: Duration
    private var assignment: NodeAssignment?
    private var remote: [NodeAssignment.RemoteTask] = []
    private var lastReport: [TaskReport] = []
    private var writer: ControlWriter?

    public init(nodeID: String, agent: NodeAgent, directory: EndpointDirectory?, statusInterval: Duration = .milliseconds(500)) {
        self.nodeID = nodeID; self.agent = agent; self.directory = directory; self.statusInterval = statusInterval
    }

    public nonisolated func run(_ connection: ControlConnection) async throws {
        try await connection.run { inbound, writer in
            await self.attach(writer)
            try await writer.send(json: ControlMessage.hello(nodeID: self.nodeID))
            let background = Task {
                await withTaskGroup(of: Void.self) { g in
                    if let directory = self.directory {
                        g.addTask {
                            for await tasks in await directory.updates() { await self.remoteChanged(tasks) }
                        }
                    }
                    g.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: self.statusInterval)
                            await self.report(force: false)
                        }
                    }
                }
            }
            defer { background.cancel() }
            for try await bytes in inbound {
                guard let message = try? JSONDecoder().decode(ControlMessage.self, from: Data(bytes)) else {
                    try await writer.send(json: ControlMessage.error("undecodable control message (\(bytes.count) bytes)"))
                    continue
                }
                switch message {
                case .assignment(let a):
                    await self.received(a)
                case .error(let text):
                    throw SessionError.manager(text)
                default:
                    continue
                }
            }
        }
    }

    private func attach(_ w: ControlWriter) { writer = w }

    private func received(_ a: NodeAssignment) async {
        assignment = a
        await converge()
    }

    private func remoteChanged(_ tasks: [NodeAssignment.RemoteTask]) async {
        remote = tasks
        if assignment != nil { await converge() }
    }

    /// Applies the assignment with the current remote tasks; an apply that fails is reported and
    /// retried with the next change (or the next assignment).
    private func converge() async {
        guard var a = assignment else { return }
        let networks = Set(a.networks.map(\.id))
        a.remoteTasks = remote.compactMap { r in
            var r = r
            r.attachments = r.attachments.filter { networks.contains($0.network) }
            return r.attachments.isEmpty || r.nodeID == nodeID ? nil : r
        }
        do {
            try await agent.apply(a)
            try await directory?.publish(a.tasks)
        } catch {
            try? await writer?.send(json: ControlMessage.error("node \(nodeID): \(error)"))
        }
        await report(force: true)
    }

    private func report(force: Bool) async {
        let now = await agent.status()
        guard force || now != lastReport else { return }
        lastReport = now
        try? await writer?.send(json: ControlMessage.status(now))
    }
}

public enum SessionError: Error, Sendable, CustomStringConvertible {
    case manager(String)
    public var description: String {
        switch self { case .manager(let text): return "the manager said: \(text)" }
    }
}
