import Testing
@testable import MeshDNS
import MeshKernel

@Suite("record index")
struct RecordIndexTests {
    func index() -> DNSRecordIndex {
        var i = DNSRecordIndex()
        i.upsert(DNSNetwork(id: "n1", name: "front"))
        i.upsert(DNSNetwork(id: "n2", name: "back"))
        i.upsert(DNSService(id: "s", name: "web", aliases: ["www"], vips: ["n1": [IPAddress("10.1.0.2")!]]))
        i.upsert(DNSTask(id: "t1", name: "web.1", service: "web", aliases: ["one"], addresses: ["n1": [IPAddress("10.1.0.5")!]]))
        i.upsert(
            DNSTask(id: "t2", name: "web.2", service: "web", addresses: ["n1": [IPAddress("10.1.0.6")!], "n2": [IPAddress("10.2.0.6")!]]))
        return i
    }

    @Test func namesAreScopedPerNetwork() {
        let i = index()
        #expect(i.addresses(for: DNSName("web")!, networks: ["n1"]) == [IPAddress("10.1.0.2")!])
        #expect(i.addresses(for: DNSName("web")!, networks: ["n2"]) == nil)
        #expect(i.addresses(for: DNSName("web.2")!, networks: ["n2"]) == [IPAddress("10.2.0.6")!])
        #expect(i.addresses(for: DNSName("web.2.back")!, networks: ["n2"]) == [IPAddress("10.2.0.6")!])
        #expect(i.addresses(for: DNSName("web.2.front")!, networks: ["n2"]) == nil)
        #expect(i.addresses(for: DNSName("WEB.2.FRONT")!, networks: ["n1"]) == [IPAddress("10.1.0.6")!])
        #expect(i.addresses(for: DNSName("www.front")!, networks: ["n1"]) == [IPAddress("10.1.0.2")!])
        #expect(i.addresses(for: DNSName("front")!, networks: ["n1"]) == nil)
        #expect(Set(i.addresses(for: DNSName("TASKS.web")!, networks: ["n1"]) ?? []) == [IPAddress("10.1.0.5")!, IPAddress("10.1.0.6")!])
        #expect(i.names(for: IPAddress("10.1.0.5")!, networks: ["n1"]) == [DNSName("web.1.front")!])
        #expect(i.names(for: IPAddress("10.1.0.5")!, networks: ["n2"]) == nil)
    }

    @Test func removingAndReplacingUndoesExactlyWhatWasAdded() {
        var i = index()
        let before = i.nameCount
        i.upsert(DNSTask(id: "t3", name: "web.3", service: "web", addresses: ["n1": [IPAddress("10.1.0.7")!]]))
        #expect(i.nameCount == before + 1)  // web.3; tasks.web already existed, web.3.front is derived
        i.removeTask("t3")
        #expect(i.nameCount == before)
        // Replace t1 with a new address and no alias.
        i.upsert(DNSTask(id: "t1", name: "web.1", service: "web", addresses: ["n1": [IPAddress("10.1.0.9")!]]))
        #expect(i.addresses(for: DNSName("one")!, networks: ["n1"]) == nil)
        #expect(i.addresses(for: DNSName("web.1")!, networks: ["n1"]) == [IPAddress("10.1.0.9")!])
        #expect(i.names(for: IPAddress("10.1.0.5")!, networks: ["n1"]) == nil)
        i.removeTask("t1")
        i.removeTask("t2")
        i.removeService("s")
        #expect(i.nameCount == 0)
    }

    /// libnetwork answers `tasks.<alias>` for each of a service's network aliases, as it answers
    /// `tasks.<service>`: `stack deploy` names services `<stack>_<name>` and gives them `<name>` as alias.
    @Test func tasksOfAServiceAliasResolveToItsTasks() {
        var i = DNSRecordIndex()
        i.upsert(DNSNetwork(id: "n1", name: "demo_front"))
        i.upsert(DNSService(id: "s", name: "demo_web", aliases: ["web"], vips: ["n1": [IPAddress("10.1.0.2")!]]))
        let a5 = IPAddress("10.1.0.5")!, a6 = IPAddress("10.1.0.6")!
        i.upsert(DNSTask(id: "t1", name: "demo_web.1.aaa", service: "demo_web", serviceAliases: ["web"], addresses: ["n1": [a5]]))
        i.upsert(DNSTask(id: "t2", name: "demo_web.2.bbb", service: "demo_web", serviceAliases: ["web"], addresses: ["n1": [a6]]))
        #expect(i.addresses(for: DNSName("web")!, networks: ["n1"]) == [IPAddress("10.1.0.2")!])
        #expect(Set(i.addresses(for: DNSName("tasks.web")!, networks: ["n1"]) ?? []) == [a5, a6])
        #expect(Set(i.addresses(for: DNSName("Tasks.Web.demo_front")!, networks: ["n1"]) ?? []) == [a5, a6])
        #expect(Set(i.addresses(for: DNSName("tasks.demo_web")!, networks: ["n1"]) ?? []) == [a5, a6])
        #expect(i.addresses(for: DNSName("tasks.web")!, networks: ["n2"]) == nil)
        #expect(i.addresses(for: DNSName("tasks.www")!, networks: ["n1"]) == nil)

        // An alias the service drops (the tasks are upserted again without it) stops answering.
        i.upsert(DNSTask(id: "t1", name: "demo_web.1.aaa", service: "demo_web", addresses: ["n1": [a5]]))
        #expect(i.addresses(for: DNSName("tasks.web")!, networks: ["n1"]) == [a6])
        i.removeTask("t2")
        #expect(i.addresses(for: DNSName("tasks.web")!, networks: ["n1"]) == nil)
        #expect(i.addresses(for: DNSName("tasks.demo_web")!, networks: ["n1"]) == [a5])
        // An alias equal to the service's name adds nothing twice, and removal leaves nothing behind.
        i.upsert(DNSTask(id: "t3", name: "demo_web.3.ccc", service: "demo_web", serviceAliases: ["demo_web"], addresses: ["n1": [a6]]))
        i.removeTask("t3")
        i.removeTask("t1")
        i.removeService("s")
        #expect(i.nameCount == 0)
    }

    @Test func renamingANetworkReindexesOnlyItsMembers() {
        var i = index()
        i.upsert(DNSNetwork(id: "n2", name: "backend"))
        #expect(i.addresses(for: DNSName("web.2.backend")!, networks: ["n2"]) == [IPAddress("10.2.0.6")!])
        #expect(i.addresses(for: DNSName("web.2.back")!, networks: ["n2"]) == nil)
        i.removeNetwork("n2")
        #expect(i.addresses(for: DNSName("web.2")!, networks: ["n2"]) == nil)
        #expect(i.addresses(for: DNSName("web.2")!, networks: ["n1"]) == [IPAddress("10.1.0.6")!])
    }

    @Test func anUpdateCostsTheSameAt100And100000Tasks() {
        // Cost model: one task update must not scale with the table. Compare the time of 1,000
        // updates against a small and a 1,000× larger table; allow generous noise (4×).
        func timeUpdates(tableSize: Int) -> Duration {
            var i = DNSRecordIndex()
            i.upsert(DNSNetwork(id: "n", name: "net"))
            for k in 0..<tableSize {
                i.upsert(DNSTask(id: "t\(k)", name: "task\(k)", service: "svc\(k % 100)", addresses: ["n": [.v4(0x0A00_0000 | UInt32(k))]]))
            }
            let clock = ContinuousClock()
            return clock.measure {
                for k in 0..<1000 {
                    i.upsert(
                        DNSTask(
                            id: "t\(k % 100)", name: "task\(k % 100)", service: "svc\(k % 100)",
                            addresses: ["n": [.v4(0x0B00_0000 | UInt32(k))]]))
                }
            }
        }
        _ = timeUpdates(tableSize: 100)
        let small = timeUpdates(tableSize: 100)
        let large = timeUpdates(tableSize: 100_000)
        #expect(large < small * 4, "1,000 updates took \(small) at 100 tasks, \(large) at 100,000")
    }
}
