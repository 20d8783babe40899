import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import StrataCore

/// Where the client verbs send their requests, with which token, and how they print the answers.
struct ClientOptions: ParsableArguments {
    @Option(help: "The Strata server (default: $STRATA_URL, else http://127.0.0.1:8080)")
    var url: String?
    @Option(help: "The API token (default: $STRATA_TOKEN)")
    var token: String?
    @Option(name: [.short, .customLong("output")], help: "table (for people) or json (the API's bytes)")
    var output: OutputFormat = .table
    @Option(help: "Seconds to keep asking while the server answers 503 or a write's answer is lost (0: never)")
    var retryFor: Double = 10

    enum OutputFormat: String, ExpressibleByArgument {
        case table, json
    }

    func validate() throws {
        guard (0...86_400).contains(retryFor) else {
            throw ValidationError("--retry-for takes a number of seconds from 0 to 86400, not \(retryFor)")
        }
        // A port past 65535 would trap in NIO's socket address, not fail.
        guard let url = URL(string: baseURL), let scheme = url.scheme?.lowercased(),
            ["http", "https"].contains(scheme),
            url.host?.isEmpty == false, url.port.map({ (1...65535).contains($0) }) ?? true
        else {
            throw ValidationError("the server's URL must be http://host[:port] or https://…, not '\(baseURL)'")
        }
    }

    var baseURL: String {
        let environment = ProcessInfo.processInfo.environment
        let base = url ?? environment["STRATA_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8080"
        return base.hasSuffix("/") ? String(base.dropLast()) : base
    }

    var bearer: String? {
        token ?? ProcessInfo.processInfo.environment["STRATA_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// The API over HTTP, for the client verbs: every answer that is not a 2xx becomes a ``ClientFailure``
/// carrying the problem document and the exit code of its class.
struct StrataClient: Sendable {
    let options: ClientOptions
    let http: HTTPClient

    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: String

        var json: JSONValue { (try? JSONValue(parsing: body)) ?? .null }
    }

    /// Runs `body` with a client, shut down afterwards.
    static func with<Result: Sendable>(
        _ options: ClientOptions, _ body: @Sendable (StrataClient) async throws -> Result
    ) async throws -> Result {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let result = try await body(StrataClient(options: options, http: http))
            try await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    /// Sends one request and answers its 2xx answer, or throws the failure.
    ///
    /// A write carries an `Idempotency-Key` of its own, so that it can be sent again safely. While the
    /// server answers 503 (PostgreSQL restarting) or closes the connection before answering, the request
    /// goes again, after the server's `Retry-After`, until `--retry-for` has passed: a verb run during a
    /// restart is slower, not failed, and a write it repeats is applied once.
    func send(_ method: HTTPMethod, _ path: String, json: String? = nil, headers: [String: String] = [:])
        async throws -> Answer
    {
        var request = HTTPClientRequest(url: options.baseURL + path)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        if let token = options.bearer { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if method != .GET, method != .HEAD, !request.headers.contains(name: "Idempotency-Key") {
            request.headers.add(name: "Idempotency-Key", value: "strata-cli-\(UUID().uuidString.lowercased())")
        }
        let giveUpAt = ContinuousClock.now + .milliseconds(Int64(options.retryFor * 1000))
        while true {
            let answer: Answer
            do {
                let response = try await http.execute(request, timeout: .seconds(60))
                let body = String(buffer: try await response.body.collect(upTo: 256 << 20))
                answer = Answer(status: Int(response.status.code), headers: response.headers, body: body)
            } catch let error as HTTPClientError where error == .remoteConnectionClosed {
                // Every request here is safe to repeat: a read, or a write with its key.
                guard let wait = Self.pause(before: giveUpAt) else {
                    throw ClientFailure(unreachable: options.baseURL, error)
                }
                Self.say("the server closed the connection before answering; asking again in \(wait)")
                try await Task.sleep(for: wait)
                continue
            } catch {
                throw ClientFailure(unreachable: options.baseURL, error)
            }
            if (200..<300).contains(answer.status) { return answer }
            let failure = ClientFailure(answer)
            guard answer.status == 503,
                let wait = Self.pause(before: giveUpAt, retryAfter: answer.headers.first(name: "Retry-After"))
            else { throw failure }
            Self.say("\(failure.message); asking again in \(wait)")
            try await Task.sleep(for: wait)
        }
    }

    /// How long to wait before asking again: the server's `Retry-After` (seconds), else half a second,
    /// never more than 5 s; nil when that would pass `giveUpAt`.
    private static func pause(before giveUpAt: ContinuousClock.Instant, retryAfter: String? = nil) -> Duration? {
        let seconds = min(5, max(0.5, retryAfter.flatMap(Double.init) ?? 0.5))
        let wait = Duration.milliseconds(Int64(seconds * 1000))
        return ContinuousClock.now + wait <= giveUpAt ? wait : nil
    }

    /// A note on standard error, where the verb's answer on standard output stays whole.
    private static func say(_ text: String) {
        FileHandle.standardError.write(Data("strata: \(text)\n".utf8))
    }

    /// A dataset's id from an id or `namespace/name`. A name is looked up `asOf` the read it is for: the
    /// dataset that held it then, which may since have been retired and the name given to another.
    ///
    /// Namespaces and names may both hold `/` (OpenLineage names an S3 object `s3://bucket` and
    /// `path/to/file`), so each `/` is tried as the separator, the last first: the dataset found with the
    /// longest namespace is the one meant.
    func datasetID(_ reference: String, asOf: String? = nil) async throws -> String {
        if UUID(uuidString: reference) != nil { return reference.lowercased() }
        let splits = Self.namespaceAndName(splitting: reference)
        guard !splits.isEmpty else {
            throw ClientFailure(
                exitCode: .invalid, message: "'\(reference)' is neither a dataset id nor namespace/name", problem: nil)
        }
        var notFound: ClientFailure?
        for (namespace, name) in splits {
            let path = [namespace, name].map { $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
            do {
                let answer = try await send(
                    .GET, "/v1/namespaces/\(path[0])/datasets/\(path[1])" + queryString([("as_of", asOf)]))
                guard let id = answer.json["id"]?.stringValue else {
                    throw ClientFailure(exitCode: .failed, message: "no id in the answer", problem: nil)
                }
                return id
            } catch let failure as ClientFailure where failure.exitCode == .notFound {
                notFound = notFound ?? failure
            }
        }
        throw notFound!
    }

    /// Every way to read `reference` as `namespace/name` with neither part empty, the last `/` first.
    static func namespaceAndName(splitting reference: String) -> [(namespace: String, name: String)] {
        reference.indices.reversed().compactMap { index in
            guard reference[index] == "/", index != reference.startIndex,
                reference.index(after: index) != reference.endIndex
            else { return nil }
            return (String(reference[..<index]), String(reference[reference.index(after: index)...]))
        }
    }
}

/// A refusal or failure, as the client reports it: a message for people, the problem document, and
/// the exit code of its class (the README lists them).
struct ClientFailure: Error, CustomStringConvertible {
    enum ExitCode: Int32 {
        case failed = 1
        case unreachable = 3
        case unauthorized = 4
        case forbidden = 5
        case notFound = 6
        case conflict = 7
        case versionConflict = 8
        case invalid = 9
        case unavailable = 10
    }

    var exitCode: ExitCode
    var message: String
    var problem: String?

    var description: String { message }

    init(exitCode: ExitCode, message: String, problem: String?) {
        self.exitCode = exitCode
        self.message = message
        self.problem = problem
    }

    /// The server at `baseURL` could not be asked, or did not answer: why, in words.
    init(unreachable baseURL: String, _ error: any Error) {
        let why =
            switch error {
            case let error as IOError where error.errnoCode == ECONNREFUSED:
                "nothing listens there (connection refused); is `strata serve` running, and does STRATA_URL (--url) name it?"
            case let error as HTTPClientError where error == .connectTimeout: "the connection timed out"
            case let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout:
                "no answer in time"
            case let error as HTTPClientError where error == .remoteConnectionClosed:
                "the server closed the connection before answering"
            default: "\(error)"
            }
        self.init(exitCode: .unreachable, message: "cannot reach \(baseURL): \(why)", problem: nil)
    }

    init(_ answer: StrataClient.Answer) {
        let problem = answer.json
        let code = problem["code"]?.stringValue
        switch answer.status {
        case 401: exitCode = .unauthorized
        case 403: exitCode = .forbidden
        case 404: exitCode = .notFound
        case 409: exitCode = .conflict
        case 412: exitCode = .versionConflict
        case 503: exitCode = .unavailable
        case 400..<500: exitCode = .invalid
        default: exitCode = .failed
        }
        var lines = [
            "\(problem["title"]?.stringValue ?? "HTTP \(answer.status)")"
                + (code.map { " (\($0))" } ?? "") + ": " + (problem["detail"]?.stringValue ?? answer.body)
        ]
        for item in problem["errors"]?.arrayValue ?? [] {
            lines.append("  \(item["path"]?.stringValue ?? "/"): \(item["message"]?.stringValue ?? "")")
        }
        message = lines.joined(separator: "\n")
        self.problem = answer.body
    }
}

/// A client verb's body: its answer printed, a failure reported on standard error with its exit code.
protocol ClientVerb: AsyncParsableCommand, Sendable {
    var client: ClientOptions { get }
    func perform(_ api: StrataClient) async throws
}

extension ClientVerb {
    func run() async throws {
        do {
            try await StrataClient.with(client) { api in try await perform(api) }
        } catch let failure as ClientFailure {
            FileHandle.standardError.write(Data("strata: \(failure.message)\n".utf8))
            if client.output == .json, let problem = failure.problem {
                print(problem)
            }
            throw ExitCode(failure.exitCode.rawValue)
        }
    }

    /// Prints the API's bytes for `-o json`, else `table(answer)`.
    func show(_ answer: StrataClient.Answer, _ table: (JSONValue) -> String) {
        print(client.output == .json ? answer.body : table(answer.json))
    }
}

extension JSONValue {
    /// A member's text, or "" when it is missing or not a string: for printing.
    func text(_ key: String) -> String { self[key]?.stringValue ?? "" }

    /// `namespace/name` of a dataset, or its bare id when the token may not see its name.
    var qualifiedName: String {
        guard let name = self["name"]?.stringValue else { return text("dataset_id") }
        return "\(text("namespace"))/\(name)"
    }
}

/// Rows as aligned columns, clipped to the terminal's width when standard output is one.
enum TextTable {
    static func render(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        var widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        let limit = terminalWidth
        if let limit, widths.reduce(0, +) + 2 * (widths.count - 1) > limit,
            let widest = widths.indices.max(by: {
                widths[$0] < widths[$1]
            })
        {
            let others = widths.enumerated().filter { $0.offset != widest }.map(\.element).reduce(0, +)
            widths[widest] = max(8, limit - others - 2 * (widths.count - 1))
        }
        return all.map { row in
            row.enumerated().map { column, text in
                let clipped = text.count > widths[column] ? String(text.prefix(widths[column] - 1)) + "…" : text
                return column == row.count - 1
                    ? clipped : clipped.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    private static var terminalWidth: Int? {
        guard isatty(STDOUT_FILENO) != 0 else { return nil }
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }
}
