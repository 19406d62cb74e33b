import MeshKernel

/// The engine version the daemon reports to clients (`docker info`, `node ls` ENGINE VERSION).
public enum DaemonVersion {
    public static var engine: String { MeshVersion.string }
}
