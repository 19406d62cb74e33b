// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "meshd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "meshd", targets: ["meshd"]),
        .executable(name: "meshctl", targets: ["meshctl"]),
        .executable(name: "meshd-demo", targets: ["meshd-demo"]),
        .library(name: "MeshKernel", targets: ["MeshKernel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
    ],
    targets: [
        // libnl-3 core + route + genl. One module so a single import sees the whole libnl API.
        .systemLibrary(
            name: "CNetlink",
            pkgConfig: "libnl-genl-3.0",
            providers: [.apt(["libnl-3-dev", "libnl-route-3-dev", "libnl-genl-3-dev"])]
        ),
        .systemLibrary(
            name: "CNFTables",
            pkgConfig: "libnftnl",
            providers: [.apt(["libmnl-dev", "libnftnl-dev"])]
        ),
        // What Swift cannot import: _GNU_SOURCE calls (setns, unshare) and function-like netlink macros.
        .target(name: "CMeshShim"),
        // Values every module may use (addresses, prefixes, MACs, the service enums, the seeded PRNG,
        // the version); links no C library, as NIOCore holds swift-nio's values.
        .target(name: "MeshValues"),
        // Kernel access only: namespaces, links, addresses, routes, neighbours, nftables, IPVS.
        .target(
            name: "MeshKernel",
            dependencies: ["MeshValues", "CNetlink", "CNFTables", "CMeshShim"]
        ),
        .target(
            name: "MeshDataplane",
            dependencies: ["MeshKernel", .product(name: "Metrics", package: "swift-metrics")]
        ),
        .target(
            name: "MeshTestbed",
            dependencies: [
                "MeshKernel", "MeshDataplane", "MeshControl", "MeshRuntime",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The embedded DNS server at 127.0.0.11 inside task namespaces.
        .target(
            name: "MeshDNS",
            dependencies: [
                "MeshKernel",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // `meshd whoami`: the HTTP test server of tests, benchmarks and the demo.
        .target(
            name: "MeshWhoami",
            dependencies: [
                "MeshKernel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Membership, failure detection and per-network replicated tables on port 7946.
        .target(
            name: "MeshGossip",
            dependencies: [
                "MeshValues",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The task runtime: task namespaces and their drivers (host processes from the image catalog;
        // OCI containers through runc).
        .target(name: "MeshRuntime", dependencies: ["MeshValues", "MeshKernel", "CMeshShim"]),
        // OCI images: references, the distribution API client, the content-addressed store, layer
        // unpacking and overlay rootfs (used by the runc task driver).
        // sys/xattr.h for MeshImage (not in Swift's Glibc module).
        .target(name: "CMeshXattr"),
        .target(
            name: "MeshImage",
            dependencies: [
                "MeshValues", "CMeshXattr",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The 2377 control channel: framed messages over TLS 1.3, mutual under the cluster CA.
        .target(
            name: "MeshControl",
            dependencies: [
                "MeshKernel", "MeshDataplane",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
            ]),
        // The node agent: assignments → task processes, dataplane state, DNS records.
        .target(
            name: "MeshAgent",
            dependencies: [
                "MeshKernel", "MeshDataplane", "MeshRuntime", "MeshDNS", "MeshGossip", "MeshControl",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // The manager core: cluster model, store, allocator, scheduler, orchestrator, CA and join
        // tokens (the loop that drives it is MeshDaemon's ManagerPlane; the node agent is MeshAgent).
        .target(
            name: "MeshCluster",
            dependencies: [
                "MeshValues",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The cluster store on etcd (its v3 JSON gateway over swift-nio HTTP/1.1), for several managers.
        .target(
            name: "MeshEtcd",
            dependencies: [
                "MeshCluster",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // The Docker-Engine-compatible HTTP API on the daemon's unix socket.
        .target(
            name: "MeshAPI",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The daemon: the API's backend over the cluster manager, the 2377 control plane, the node agent.
        .target(
            name: "MeshDaemon",
            dependencies: [
                "MeshAPI", "MeshCluster", "MeshControl", "MeshAgent", "MeshRuntime", "MeshDataplane", "MeshDNS",
                "MeshGossip", "MeshKernel", "MeshValues", "MeshImage", "MeshEtcd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .executableTarget(
            name: "meshd",
            dependencies: [
                "MeshKernel", "MeshDataplane", "MeshGossip", "MeshWhoami", "MeshDaemon", "MeshAPI", "MeshRuntime",
                "MeshImage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The demo cluster (scripts/demo): built on the testbed, so not part of the production binary.
        .executableTarget(
            name: "meshd-demo",
            dependencies: [
                "MeshKernel", "MeshRuntime", "MeshTestbed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "meshctl",
            dependencies: [
                "MeshAPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "meshbench",
            dependencies: [
                "MeshKernel", "MeshDataplane", "MeshTestbed", "MeshDNS", "MeshGossip", "MeshWhoami", "MeshAgent", "MeshControl",
                "MeshRuntime", "MeshDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "bench/meshbench"
        ),
        .testTarget(name: "MeshKernelTests", dependencies: ["MeshKernel"]),
        // Needs root: every test makes its own namespaces and checks the result with ip/bridge -j.
        .testTarget(name: "MeshKernelSystemTests", dependencies: ["MeshKernel", "MeshTestbed"]),
        // Runs only in the VM lane (scripts/vm-test): what the host kernel lacks, IPVS first.
        .testTarget(name: "MeshKernelVMTests", dependencies: ["MeshKernel", "MeshTestbed"]),
        .testTarget(name: "MeshWhoamiTests", dependencies: ["MeshWhoami", "MeshKernel", "MeshTestbed"]),
        .testTarget(name: "MeshDNSTests", dependencies: ["MeshDNS", "MeshKernel"]),
        .testTarget(name: "MeshDNSSystemTests", dependencies: ["MeshDNS", "MeshKernel", "MeshTestbed"]),
        .testTarget(name: "MeshGossipTests", dependencies: ["MeshGossip"]),
        .testTarget(name: "MeshDataplaneTests", dependencies: ["MeshDataplane", "MeshKernel"]),
        // e2e: three node namespaces on a test underlay, `meshd dataplane apply` per node, curl/ping between.
        .testTarget(name: "MeshDataplaneSystemTests", dependencies: ["MeshDataplane", "MeshKernel", "MeshTestbed"]),
        // The same e2e suite with --lb ipvs, in the VM lane.
        .testTarget(name: "MeshDataplaneVMTests", dependencies: ["MeshDataplane", "MeshKernel", "MeshTestbed"]),
        // Unit tests plus the puller against a real Debian docker-registry on 127.0.0.1 (root: overlay, chown).
        .testTarget(
            name: "MeshImageTests",
            dependencies: [
                "MeshImage", "MeshTestbed", "CMeshXattr", "MeshValues",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]),
        // Process tasks and runc containers in real namespaces (root); config.json goldens in Golden/.
        .testTarget(
            name: "MeshRuntimeTests", dependencies: ["MeshRuntime", "MeshKernel", "MeshTestbed", "CMeshShim"], exclude: ["Golden"]),
        .testTarget(
            name: "MeshControlTests",
            dependencies: [
                "MeshControl", "MeshCluster", "MeshTestbed",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .testTarget(
            name: "MeshAgentTests",
            dependencies: ["MeshAgent", "MeshControl", "MeshGossip", "MeshKernel", "MeshDataplane", "MeshDNS", "MeshRuntime"]),
        .testTarget(
            name: "MeshAgentSystemTests",
            dependencies: [
                "MeshAgent", "MeshControl", "MeshDataplane", "MeshDNS", "MeshRuntime", "MeshKernel", "MeshTestbed", "MeshGossip",
                .product(name: "NIOPosix", package: "swift-nio"),
            ]),
        .testTarget(name: "MeshClusterTests", dependencies: ["MeshCluster", "MeshKernel"]),
        // One conformance suite over both store backends (SQLite, and a real Debian etcd it starts), the etcd
        // client's request encoding, and the election on etcd.
        .testTarget(name: "MeshStoreTests", dependencies: ["MeshCluster", "MeshEtcd", "MeshTestbed"]),
        .testTarget(name: "MeshAPITests", dependencies: ["MeshAPI", "MeshKernel", "MeshTestbed"]),
        .testTarget(name: "MeshGossipSystemTests", dependencies: ["MeshGossip", "MeshKernel", "MeshTestbed"]),
        .testTarget(
            name: "MeshDaemonTests",
            dependencies: [
                "MeshDaemon", "MeshAPI", "MeshCluster", "MeshControl", "MeshKernel", "MeshTestbed", "MeshRuntime",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // e2e: one `meshd daemon` per node namespace, driven through meshctl and the docker CLI.
        .testTarget(name: "MeshDaemonSystemTests", dependencies: ["MeshKernel", "MeshTestbed", "MeshRuntime"]),
    ],
    swiftLanguageModes: [.v6]
)
