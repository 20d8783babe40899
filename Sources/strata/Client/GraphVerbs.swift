import ArgumentParser
import AsyncHTTPClient
import Foundation
import StrataCore

/// `strata lineage ID`: what feeds a dataset and what it feeds, printed as trees.
struct LineageCommand: ClientVerb {
    static let configuration = CommandConfiguration(
        commandName: "lineage", abstract: "A dataset's lineage as a tree (upstream, downstream, or both).")
    @OptionGroup var client: ClientOptions
    @Argument(help: "An id, or namespace/name") var dataset: String
    @Flag(help: "Only what feeds it") var upstream = false
    @Flag(help: "Only what it feeds") var downstream = false
    @Option(help: "How many hops to walk (default 5, at most 100)") var depth: Int?
    @Option(name: .customLong("as-of"), help: "A log position or an RFC 3339 time") var asOf: String?

    func perform(_ api: StrataClient) async throws {
        let id = try await api.datasetID(dataset, asOf: asOf)
        let direction = upstream == downstream ? "both" : upstream ? "upstream" : "downstream"
        let path =
            "/v1/datasets/\(id)/lineage"
            + queryString([("direction", direction), ("depth", depth.map(String.init)), ("as_of", asOf)])
        show(try await api.send(.GET, path)) { LineageTree(answer: $0).render(direction: direction) }
    }
}

/// The lineage answer drawn as text: the root, then each side as an indented tree (a dataset reached
/// again is shown once, then marked).
struct LineageTree {
    var labels: [String: String] = [:]
    var inputs: [String: [(id: String, edge: String)]] = [:]
    var outputs: [String: [(id: String, edge: String)]] = [:]
    var root: String
    /// The depth the answer holds whole, when the server left deeper levels out.
    var truncatedAt: Int?

    init(answer: JSONValue) {
        root = answer["root"]?["dataset_id"]?.stringValue ?? ""
        if answer["truncated"] == .bool(true) { truncatedAt = answer["depth"]?.intValue ?? 0 }
        for node in answer["nodes"]?.arrayValue ?? [] {
            let id = node["dataset_id"]?.stringValue ?? ""
            let name = node.qualifiedName
            let version = node["version"]?.intValue.map { " v\($0)" } ?? ""
            labels[id] = "\(name)\(version)" + (node["status"]?.stringValue.map { " (\($0))" } ?? "")
        }
        for edge in answer["edges"]?.arrayValue ?? [] {
            let from = edge["from"]?["dataset_id"]?.stringValue ?? ""
            let to = edge["to"]?["dataset_id"]?.stringValue ?? ""
            let versions = "v\(edge["from"]?["version"]?.intValue ?? 0)→v\(edge["to"]?["version"]?.intValue ?? 0)"
            let job = edge["job"]?["name"]?.stringValue.map { " by \($0)" } ?? ""
            inputs[to, default: []].append((from, versions + job))
            outputs[from, default: []].append((to, versions + job))
        }
    }

    func render(direction: String) -> String {
        var lines = [labels[root] ?? root]
        if direction != "downstream" {
            lines.append("upstream:")
            var seen: Set<String> = [root]
            walk(root, inputs, prefix: "  ", into: &lines, seen: &seen)
        }
        if direction != "upstream" {
            lines.append("downstream:")
            var seen: Set<String> = [root]
            walk(root, outputs, prefix: "  ", into: &lines, seen: &seen)
        }
        if let truncatedAt {
            lines.append(
                "(only \(truncatedAt) level\(truncatedAt == 1 ? "" : "s") shown: the next one has more edges than "
                    + "one answer holds; ask for one direction, or start from a dataset further along)")
        }
        return lines.joined(separator: "\n")
    }

    private func walk(
        _ id: String, _ next: [String: [(id: String, edge: String)]], prefix: String, into lines: inout [String],
        seen: inout Set<String>
    ) {
        let children = (next[id] ?? []).sorted { (labels[$0.id] ?? $0.id) < (labels[$1.id] ?? $1.id) }
        for (index, child) in children.enumerated() {
            let last = index == children.count - 1
            let again = seen.contains(child.id)
            lines.append(
                prefix + (last ? "└─ " : "├─ ") + (labels[child.id] ?? child.id) + "  [\(child.edge)]"
                    + (again ? " (see above)" : ""))
            if again { continue }
            seen.insert(child.id)
            walk(child.id, next, prefix: prefix + (last ? "   " : "│  "), into: &lines, seen: &seen)
        }
    }
}

/// `strata impact ID`: everything downstream, however far.
struct ImpactCommand: ClientVerb {
    static let configuration = CommandConfiguration(
        commandName: "impact",
        abstract: "Everything downstream of a dataset, however far, with its status (retired ones too).",
        discussion: "What retiring it would break: `strata ds retire ID --reason R --dry-run`.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "An id, or namespace/name") var dataset: String
    @Option(name: .customLong("as-of"), help: "A log position or an RFC 3339 time") var asOf: String?

    func perform(_ api: StrataClient) async throws {
        let id = try await api.datasetID(dataset, asOf: asOf)
        show(try await api.send(.GET, "/v1/datasets/\(id)/impact" + queryString([("as_of", asOf)]))) {
            impactRows($0["impact"]?.arrayValue ?? [])
        }
    }
}

/// `strata events tail`: the log from a position on.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "The event log over the HTTP API.", subcommands: [TailEvents.self])
}

struct TailEvents: ClientVerb {
    static let configuration = CommandConfiguration(
        commandName: "tail", abstract: "Events after a position; --follow then streams new ones as they come.")
    @OptionGroup var client: ClientOptions
    @Option(help: "Print events after this position (default: the last 20)") var after: Int?
    @Option var limit = 100
    @Flag(help: "Keep following the live feed (Server-Sent Events) until interrupted") var follow = false

    func perform(_ api: StrataClient) async throws {
        var position: Int
        if let after {
            position = after
        } else {
            let head = try await api.send(.GET, "/v1/events?limit=1")
            position = max(0, Int(head.headers.first(name: "Strata-Position") ?? "0").map { $0 - 20 } ?? 0)
        }
        if follow {
            // Each event as it comes, even into a pipe or a file (which would otherwise buffer it).
            try await api.follow(after: position) { event in
                FileHandle.standardOutput.write(Data((line(for: event) + "\n").utf8))
            }
            return
        }
        let path = "/v1/events" + queryString([("after", "\(position)"), ("limit", "\(limit)")])
        let events = try await api.send(.GET, path).json["events"]?.arrayValue ?? []
        if client.output == .json {
            // One event per line, as the log exports it.
            for event in events { print(CanonicalJSON.string(event)) }
        } else {
            print(eventRows(events))
        }
    }

    /// One event as it arrives: its JSON for `-o json`, else a row of fixed-width columns.
    func line(for event: JSONValue) -> String {
        if client.output == .json { return CanonicalJSON.string(event) }
        let columns = [
            ("\(event["position"]?.intValue ?? 0)", 9), (event.text("type"), 23), (eventActor(event), 14),
            (event.text("recorded_at"), 26), (event.text("stream_id"), 38),
        ]
        return columns.map { $0.padding(toLength: max($1, $0.count), withPad: " ", startingAt: 0) }.joined()
            + eventDetail(event)
    }
}

extension StrataClient {
    /// Follows `/v1/events/stream` from `after` on, handing each event to `receive` as it arrives; when
    /// the stream ends or breaks (the server or PostgreSQL restarting), follows again from the last event
    /// seen, with `Last-Event-ID`, for as long as `--retry-for` allows the server to stay away.
    func follow(after: Int, _ receive: (JSONValue) -> Void) async throws {
        var last = after
        var followedOnce = false
        /// When the stream was last lost, while it has not been followed again since.
        var lostSince: ContinuousClock.Instant?
        while !Task.isCancelled {
            do {
                try await stream(after: last) {
                    followedOnce = true
                } flowing: {
                    lostSince = nil
                } receive: { event in
                    last = event["position"]?.intValue ?? last
                    receive(event)
                }
            } catch let failure as ClientFailure
                where failure.exitCode == .unreachable || failure.exitCode == .unavailable
            {
                // A server that never answered is likely the wrong one: said at once, as every verb says it.
                guard followedOnce || failure.exitCode == .unavailable else { throw failure }
                let since = lostSince ?? .now
                guard since.duration(to: .now) < .milliseconds(Int64(options.retryFor * 1000)) else { throw failure }
                if lostSince == nil {
                    FileHandle.standardError.write(Data("strata: \(failure.message); following again\n".utf8))
                }
                lostSince = since
            }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// One stream from `after` on, until it ends; throws ``ClientFailure`` if it cannot be opened or
    /// breaks. `opened` once the server has answered it; `flowing` at each piece of it that arrives (an
    /// event, or a heartbeat): the server answers before it reads the log, so only that says the stream
    /// works.
    private func stream(
        after: Int, opened: () -> Void, flowing: () -> Void, receive: (JSONValue) -> Void
    ) async throws {
        var request = HTTPClientRequest(url: options.baseURL + "/v1/events/stream")
        request.headers.add(name: "Accept", value: "text/event-stream")
        request.headers.add(name: "Last-Event-ID", value: "\(after)")
        if let token = options.bearer { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .hours(24 * 365))
        } catch {
            throw ClientFailure(unreachable: options.baseURL, error)
        }
        guard response.status == .ok else {
            let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
            throw ClientFailure(Answer(status: Int(response.status.code), headers: response.headers, body: body))
        }
        opened()
        var pending = ""
        do {
            for try await chunk in response.body {
                flowing()
                pending += String(buffer: chunk)
                while let end = pending.range(of: "\n\n") {
                    let message = pending[..<end.lowerBound]
                    pending = String(pending[end.upperBound...])
                    let data = message.split(separator: "\n").filter { $0.hasPrefix("data:") }
                        .map { $0.dropFirst(5).drop(while: { $0 == " " }) }.joined(separator: "\n")
                    guard !data.isEmpty, let event = try? JSONValue(parsing: data) else { continue }
                    receive(event)
                }
            }
        } catch {
            throw ClientFailure(unreachable: options.baseURL, error)
        }
    }
}

/// `strata whoami`: the token's name, role and namespaces.
struct WhoAmICommand: ClientVerb {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "The token in use.")
    @OptionGroup var client: ClientOptions

    func perform(_ api: StrataClient) async throws {
        show(try await api.send(.GET, "/v1/me")) {
            let namespaces = ($0["namespaces"]?.arrayValue ?? []).compactMap(\.stringValue)
            return "\($0.text("name")) (\($0.text("role")))"
                + (namespaces.isEmpty ? ", every namespace" : ", in \(namespaces.joined(separator: ", "))")
        }
    }
}
