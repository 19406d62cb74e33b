/// Request bodies shared by the API and daemon tests.
public enum SpecFixtures {
    /// Every field of Docker Engine API v1.47+ ServiceSpec/TaskSpec/ContainerSpec that meshd stores
    /// (secrets and configs are refused: SpecRoundTripTests), set to a value other than Go's zero value, as
    /// docker-py's `test_create_service_with_*` tests send them. `NETWORK` is replaced by an ID.
    public static let fullServiceSpec = """
        {
          "Name": "full",
          "Labels": {"com.example.tier": "front"},
          "TaskTemplate": {
            "ContainerSpec": {
              "Image": "meshd/whoami:latest",
              "Labels": {"c": "d"},
              "Command": ["whoami"],
              "Args": ["--port", "80"],
              "Hostname": "web-{{.Task.Slot}}",
              "Env": ["A=1", "B=two"],
              "Dir": "/srv",
              "User": "nobody",
              "Groups": ["wheel", "adm"],
              "Privileges": {
                "CredentialSpec": {"File": "spec.json"},
                "SELinuxContext": {"Disable": true, "User": "u", "Role": "r", "Type": "t", "Level": "s0"},
                "Seccomp": {"Mode": "custom", "Profile": "e30="},
                "AppArmor": {"Mode": "default"},
                "NoNewPrivileges": true
              },
              "Init": true,
              "StopSignal": "SIGINT",
              "TTY": true,
              "OpenStdin": true,
              "ReadOnly": true,
              "Mounts": [
                {"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": true, "Consistency": "cached",
                 "VolumeOptions": {"NoCopy": true, "Labels": {"v": "1"}, "DriverConfig": {"Name": "local", "Options": {"o": "bind"}},
                                   "Subpath": "sub"}},
                {"Type": "bind", "Source": "/etc/hosts", "Target": "/hosts",
                 "BindOptions": {"Propagation": "rslave", "NonRecursive": true, "CreateMountpoint": true,
                                 "ReadOnlyNonRecursive": true, "ReadOnlyForceRecursive": true}},
                {"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 448, "Options": [["noexec"], ["uid", "1000"]]}},
                {"Type": "image", "Source": "busybox", "Target": "/img", "ImageOptions": {"Subpath": "bin"}}
              ],
              "StopGracePeriod": 3000000000,
              "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000, "Timeout": 2000000000, "Retries": 3,
                              "StartPeriod": 4000000000, "StartInterval": 500000000},
              "Hosts": ["10.0.0.1 a", "10.0.0.2 b b.local"],
              "DNSConfig": {"Nameservers": ["1.1.1.1"], "Search": ["example.com"], "Options": ["ndots:2"]},
              "Isolation": "default",
              "Sysctls": {"net.core.somaxconn": "1024"},
              "CapabilityAdd": ["CAP_NET_ADMIN"],
              "CapabilityDrop": ["CAP_MKNOD"],
              "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
              "OomScoreAdj": 100
            },
            "Resources": {
              "Limits": {"NanoCPUs": 500000000, "MemoryBytes": 67108864, "Pids": 100},
              "Reservations": {"NanoCPUs": 100000000, "MemoryBytes": 33554432,
                               "GenericResources": [{"NamedResourceSpec": {"Kind": "gpu", "Value": "uuid-1"}},
                                                    {"DiscreteResourceSpec": {"Kind": "ssd", "Value": 2}}]}
            },
            "RestartPolicy": {"Condition": "on-failure", "Delay": 1000000000, "MaxAttempts": 3, "Window": 60000000000},
            "Placement": {
              "Constraints": ["node.role==manager"],
              "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
              "MaxReplicas": 2,
              "Platforms": [{"Architecture": "amd64", "OS": "linux"}]
            },
            "Networks": [{"Target": "NETWORK", "Aliases": ["web"], "DriverOpts": {"k": "v"}}],
            "LogDriver": {"Name": "json-file", "Options": {"max-size": "10m"}},
            "ForceUpdate": 1,
            "Runtime": "container"
          },
          "Mode": {"Replicated": {"Replicas": 2}},
          "UpdateConfig": {"Parallelism": 2, "Delay": 1000000000, "FailureAction": "rollback", "Monitor": 2000000000,
                           "MaxFailureRatio": 0.5, "Order": "start-first"},
          "RollbackConfig": {"Parallelism": 1, "Delay": 3000000000, "FailureAction": "continue", "Monitor": 4000000000,
                             "MaxFailureRatio": 0.25, "Order": "stop-first"},
          "EndpointSpec": {"Mode": "vip", "Ports": [{"Name": "web", "Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080,
                                                     "PublishMode": "ingress"}]}
        }
        """
}
