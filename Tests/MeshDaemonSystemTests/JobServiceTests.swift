import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// Job services through the stock docker CLI (issue 15): `--mode replicated-job` and
/// `global-job` run their tasks to completion, the CLI's own job progress sees them finish, and an
/// update runs the job again.
@Suite(.serialized) struct JobServiceTests {
    @Test func jobsRunToCompletionAsTheCLIExpects() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mdy")
        defer { c.destroy() }
        try ClusterTests.formSwarm(c, network: "jobs")
        func rows(_ service: String) throws -> [String] {
            ClusterTests.lines(
                try c.docker(1, ["service", "ps", service, "--format", "{{.Node}} {{.DesiredState}} {{.CurrentState}}"]).stdout)
        }
        // Without --detach the CLI follows the job (it needs JobStatus, JobIteration and 0-based slots).
        let once = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--name", "once", "--mode", "replicated-job", "--replicas", "4", "--max-concurrent", "2",
                    "--network", "jobs", "busybox", "sh", "-c", "sleep 1",
                ]), "replicated-job create", c)
        #expect((once.stdout + once.stderr).contains("job complete"), "\(once.stdout)\(once.stderr)")
        let done = try rows("once")
        #expect(done.count == 4 && done.allSatisfy { $0.contains("Complete Complete") }, "\(done)")
        let ls = try c.docker(1, ["service", "ls", "--filter", "name=once", "--format", "{{.Mode}} {{.Replicas}}"]).stdout
        #expect(ls.contains("replicated job") && ls.contains("(4/4 completed)"), "service ls: \(ls)")
        let inspect = try c.docker(1, ["service", "inspect", "once", "--format", "{{json .Spec.Mode}} {{.JobStatus.JobIteration.Index}}"])
        #expect(inspect.stdout.contains(#"{"ReplicatedJob":{"MaxConcurrent":2,"TotalCompletions":4}}"#), "\(inspect.stdout)")

        // An update (here --force) is a new iteration: four more run, the old ones stay complete.
        let again = ClusterTests.check(try c.docker(1, ["service", "update", "--force", "once"]), "job update", c)
        #expect((again.stdout + again.stderr).contains("job complete"), "\(again.stdout)\(again.stderr)")
        let after = try rows("once")
        #expect(after.count == 8 && after.allSatisfy { $0.contains("Complete Complete") }, "\(after)")

        // A global job: once on every node.
        let each = ClusterTests.check(
            try c.docker(1, ["service", "create", "--name", "each", "--mode", "global-job", "busybox", "true"]), "global-job create", c)
        #expect((each.stdout + each.stderr).contains("job complete"), "\(each.stdout)\(each.stderr)")
        let perNode = try rows("each")
        #expect(Set(perNode.compactMap { $0.split(separator: " ").first.map(String.init) }) == ["node1", "node2", "node3"], "\(perNode)")
        #expect(perNode.count == 3 && perNode.allSatisfy { $0.contains("Complete Complete") }, "\(perNode)")
        // A job cannot become a service, as dockerd refuses a mode change.
        let refused = try c.docker(1, ["service", "update", "--replicas", "2", "each"])
        #expect(!refused.succeeded, "scaling a global job: \(refused.stdout)")
    }
}
