import ArgumentParser
import Foundation
import MeshAPI

/// `-H unix://PATH`, accepted before or after the subcommand.
struct GlobalOptions: ParsableArguments {
    @Option(name: [.customShort("H"), .long], help: "Daemon socket: unix:///path (default: $MESHD_HOST or unix:///run/meshd/meshd.sock).")
    var host: String?

    func client() throws -> EngineClient {
        let h = host ?? ProcessInfo.processInfo.environment["MESHD_HOST"] ?? "unix:///run/meshd/meshd.sock"
        do {
            return try EngineClient(host: h)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// Runs a command body and turns daemon errors into docker's one-line message and exit status 1.
func reporting(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as EngineClientError {
        FileHandle.standardError.write(Data("\(e.description)\n".utf8))
        throw ExitCode(1)
    }
}

func printErr(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// Pretty JSON as `inspect` prints it.
func printJSON<T: Encodable>(_ value: T) throws {
    let e = EngineJSON.encoder()
    e.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
    print(String(decoding: try e.encode(value), as: UTF8.self))
}

/// One compact JSON object per line, as `--format json` prints lists.
func printJSONLine<T: Encodable>(_ value: T) throws {
    let e = EngineJSON.encoder()
    e.outputFormatting = [.withoutEscapingSlashes]
    print(String(decoding: try e.encode(value), as: UTF8.self))
}

enum OutputFormat: String, ExpressibleByArgument {
    case table, json
}

/// `/kind/ref/...` with each user-given segment percent-encoded.
func apiPath(_ parts: String...) -> String {
    var allowed = CharacterSet.urlPathAllowed
    allowed.remove(charactersIn: "/?#")
    return parts.map { "/" + ($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0) }.joined()
}
