/// The version both executables print.
public enum MeshVersion {
    public static let string = "0.1.0"
}
