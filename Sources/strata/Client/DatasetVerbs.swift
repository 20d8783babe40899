import ArgumentParser
import Foundation
import StrataCore

/// `strata ds …`: the catalog from a terminal, over the HTTP API.
struct DatasetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds", abstract: "Datasets over the HTTP API ($STRATA_URL, $STRATA_TOKEN).",
        subcommands: [
            ListDatasets.self, SearchDatasets.self, ShowDataset.self, CreateDataset.self, EditDataset.self,
            LifecycleVerb.Publish.self, LifecycleVerb.Archive.self, LifecycleVerb.Restore.self, RetireDataset.self,
            CloneDataset.self, DatasetVersions.self, DatasetVersion.self, DatasetHistory.self, DatasetUsages.self,
            UseDataset.self, RecordLineage.self,
        ])
}

/// The query string of `pairs` whose values are set, percent-encoded.
func queryString(_ pairs: [(String, String?)]) -> String {
    let set = pairs.compactMap { name, value in
        value.map { "\(name)=\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)" }
    }
    return set.isEmpty ? "" : "?" + set.joined(separator: "&")
}

/// One line per dataset: name, status, latest version, owner, tags.
func datasetRows(_ datasets: [JSONValue]) -> String {
    TextTable.render(
        ["ID", "NAMESPACE/NAME", "STATUS", "LATEST", "OWNER", "USED", "TAGS"],
        datasets.map { dataset in
            [
                dataset["id"]?.stringValue ?? "",
                dataset.qualifiedName,
                dataset["status"]?.stringValue ?? "", "v\(dataset["latest_version"]?.intValue ?? 0)",
                dataset["owner"]?.stringValue ?? "-",
                dataset["usage_count"]?.intValue.map { count in
                    count == 0 ? "-" : "\(count)×, last \(dataset.text("last_used_at").prefix(10))"
                } ?? "-",
                (dataset["current"]?["tags"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ","),
            ]
        })
}

struct ListDatasets: ClientVerb {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List datasets.")
    @OptionGroup var client: ClientOptions
    @Option var namespace: String?
    @Option(help: "Statuses, comma-separated, or all") var status: String?
    @Option var tag: String?
    @Option var owner: String?
    @Option(help: "A substring of the name or description") var query: String?
    @Option var format: String?
    @Flag(name: .customLong("in-use"), help: "Only datasets with a recorded usage") var inUse = false
    @Option(name: .customLong("used-since"), help: "Only datasets used at or after this RFC 3339 time")
    var usedSince: String?
    @Option(name: .customLong("produced-by"), help: "Only datasets a job (namespace/name) recorded lineage into")
    var producedBy: String?
    @Option(parsing: .unconditional, help: "name, created_at, updated_at or last_used_at; - in front for descending")
    var sort: String?
    @Option var limit: Int?
    @Option var cursor: String?
    @Option(name: .customLong("as-of")) var asOf: String?

    func perform(_ api: StrataClient) async throws {
        let path =
            "/v1/datasets"
            + queryString([
                ("namespace", namespace), ("status", status), ("tag", tag), ("owner", owner), ("q", query),
                ("format", format), ("in_use", inUse ? "true" : nil), ("used_since", usedSince),
                ("produced_by", producedBy), ("sort", sort), ("limit", limit.map(String.init)), ("cursor", cursor),
                ("as_of", asOf),
            ])
        let answer = try await api.send(.GET, path)
        show(answer) { json in
            let next = json["next_cursor"]?.stringValue.map { "\n(more: --cursor \($0))" } ?? ""
            return datasetRows(json["datasets"]?.arrayValue ?? []) + next
        }
    }
}

struct SearchDatasets: ClientVerb {
    static let configuration = CommandConfiguration(commandName: "search", abstract: "Search datasets, ranked.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "The words to look for") var text: String
    @Option var namespace: String?
    @Option var status: String?
    @Option var tag: String?
    @Option var format: String?
    @Option var limit: Int?
    @Option(help: "The next page: what the page before said after --cursor") var cursor: String?
    @Option(name: .customLong("as-of")) var asOf: String?

    func perform(_ api: StrataClient) async throws {
        let path =
            "/v1/search"
            + queryString([
                ("q", text), ("namespace", namespace), ("status", status), ("tag", tag), ("format", format),
                ("limit", limit.map(String.init)), ("cursor", cursor), ("as_of", asOf),
            ])
        show(try await api.send(.GET, path)) { json in
            let next = json["next_cursor"]?.stringValue.map { "\n(more: --cursor \($0))" } ?? ""
            return TextTable.render(
                ["SCORE", "NAMESPACE/NAME", "STATUS", "MATCHED"], (json["results"]?.arrayValue ?? []).map(Self.row))
                + next
        }
    }

    static func row(_ result: JSONValue) -> [String] {
        var score = 0.0
        if case .number(let value) = result["score"] { score = value }
        let matched: [String] = (result["matched"]?.arrayValue ?? []).map { $0.text("field") + ": " + $0.text("text") }
        return [
            String(format: "%.2f", score), result.qualifiedName, result.text("status"), matched.joined(separator: "; "),
        ]
    }
}

struct ShowDataset: ClientVerb {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One dataset, by id or NS/NAME.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "An id, or namespace/name") var dataset: String
    @Option(name: .customLong("as-of")) var asOf: String?

    func perform(_ api: StrataClient) async throws {
        let id = try await api.datasetID(dataset, asOf: asOf)
        show(try await api.send(.GET, "/v1/datasets/\(id)" + queryString([("as_of", asOf)]))) { json in
            let current = json["current"] ?? .null
            var lines = [
                "\(json.qualifiedName)  (\(json["id"]?.stringValue ?? ""))",
                "status      \(json["status"]?.stringValue ?? "")  latest v\(json["latest_version"]?.intValue ?? 0)"
                    + (json["published_version"]?.intValue.map { "  published v\($0)" } ?? "  never published"),
                "owner       \(current["owner"]?.stringValue ?? "-")",
                "location    \(current["location"]?.stringValue ?? "-")",
                "format      \(current["format"]?.stringValue ?? "-")",
                "tags        \((current["tags"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ", "))",
                "description \(current["description"]?.stringValue ?? "-")",
                "updated     \(json["updated_at"]?.stringValue ?? "") by \(json["updated_by"]?.stringValue ?? "")",
            ]
            let columns = current["schema"]?.arrayValue ?? []
            if !columns.isEmpty {
                lines.append("schema")
                lines.append(
                    TextTable.render(
                        ["  COLUMN", "TYPE"],
                        columns.map { ["  " + ($0["name"]?.stringValue ?? ""), $0["type"]?.stringValue ?? ""] }))
            }
            return lines.joined(separator: "\n")
        }
    }
}

/// The descriptive fields a create or an edit may set, as flags or a JSON file.
struct VersionFieldOptions: ParsableArguments {
    @Option var owner: String?
    @Option var description: String?
    @Option var location: String?
    @Option var format: String?
    @Option(help: "A tag; repeat for several") var tag: [String] = []
    @Option(name: .customLong("change-note")) var changeNote: String?
    @Option(
        help:
            "A JSON file (or - for standard input) with any of the fields (schema, properties, parents…); flags override it"
    )
    var file: String?

    func fields() throws -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        if let file {
            // Read as a stream, so `-` (standard input) and a pipe such as <(…) serve as well as a file.
            guard let handle = file == "-" ? FileHandle.standardInput : FileHandle(forReadingAtPath: file) else {
                throw ValidationError("cannot read \(file)")
            }
            let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
            let parsed: JSONValue
            do { parsed = try JSONValue(parsing: text) } catch {
                throw ValidationError("\(file) is not JSON: \(error)")
            }
            guard case .object(let object) = parsed else { throw ValidationError("\(file) must hold a JSON object") }
            fields = object
        }
        for (name, value) in [
            ("owner", owner), ("description", description), ("location", location), ("format", format),
            ("change_note", changeNote),
        ] {
            if let value { fields[name] = .string(value) }
        }
        if !tag.isEmpty { fields["tags"] = .array(tag.map(JSONValue.string)) }
        return fields
    }
}

struct CreateDataset: ClientVerb {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a dataset: NS/NAME.")
    @OptionGroup var client: ClientOptions
    @Argument(help: "namespace/name (the last / ends the namespace), or the name alone with --namespace")
    var dataset: String
    @Option(help: "The namespace; the argument is then the name, whole, though it holds a /.")
    var namespace: String?
    @OptionGroup var fields: VersionFieldOptions

    func perform(_ api: StrataClient) async throws {
        let key: (namespace: String, name: String)
        if let namespace {
            key = (namespace, dataset)
        } else if let last = StrataClient.namespaceAndName(splitting: dataset).first {
            key = last
        } else {
            throw ValidationError("give the dataset as namespace/name, or its name with --namespace")
        }
        var body = try fields.fields()
        // A file that names another dataset than the argument is a mistake, not a detail to override.
        for (field, value) in [("namespace", key.namespace), ("name", key.name)] {
            if let named = body[field], named != .string(value) {
                throw ValidationError(
                    "the file's \(field) is \(CanonicalJSON.string(named)), the argument's '\(value)'")
            }
            body[field] = .string(value)
        }
        show(try await api.send(.POST, "/v1/datasets", json: CanonicalJSON.string(JSONValue.object(body)))) {
            "created \($0.qualifiedName): \($0.text("id"))"
        }
    }
}

struct EditDataset: ClientVerb {
    static let configuration = CommandConfiguration(
        commandName: "edit", abstract: "Edit: a new draft version (sent with If-Match).")
    @OptionGroup var client: ClientOptions
    @Argument var dataset: String
    @OptionGroup var fields: VersionFieldOptions

    func perform(_ api: StrataClient) async throws {
        let id = try await api.datasetID(dataset)
        // If-Match with the version just read: a change made by someone else since is refused (exit 8).
        let current = try await api.send(.GET, "/v1/datasets/\(id)")
        var headers: [String: String] = [:]
        if let etag = current.headers.first(name: "ETag") { headers["If-Match"] = etag }
        let patch = CanonicalJSON.string(JSONValue.object(try fields.fields()))
        let before = current.json["stream_version"]?.intValue
        show(try await api.send(.PATCH, "/v1/datasets/\(id)", json: patch, headers: headers)) {
            // A patch that changes nothing appends nothing: no version was drafted.
            $0["stream_version"]?.intValue == before
                ? "\($0.qualifiedName): unchanged, v\($0["latest_version"]?.intValue ?? 0) already says so"
                : "drafted v\($0["latest_version"]?.intValue ?? 0) of \($0.qualifiedName)"
        }
    }
}

/// publish, archive and restore: one POST on the dataset.
enum LifecycleVerb {
    static func post(
        _ verb: some ClientVerb, _ api: StrataClient, dataset: String, action: String, body: [String: JSONValue]
    ) async throws {
        let id = try await api.datasetID(dataset)
        let answer = try await api.send(
            .POST, "/v1/datasets/\(id)/\(action)", json: CanonicalJSON.string(JSONValue.object(body)))
        verb.show(answer) {
            let published = $0["published_version"]?.intValue.map { ", published v\($0)" } ?? ""
            return "\($0.qualifiedName): \($0.text("status"))" + published
        }
    }

    struct Publish: ClientVerb {
        static let configuration = CommandConfiguration(commandName: "publish", abstract: "Publish the latest draft.")
        @OptionGroup var client: ClientOptions
        @Argument var dataset: String
        @Option(help: "The draft version to publish (default: the latest)") var version: Int?
        @Option(name: .customLong("change-note")) var changeNote: String?

        func perform(_ api: StrataClient) async throws {
            var body: [String: JSONValue] = [:]
            if let version { body["version"] = .number(Double(version)) }
            if let changeNote { body["change_note"] = .string(changeNote) }
            try await LifecycleVerb.post(self, api, dataset: dataset, action: "publish", body: body)
        }
    }

    struct Archive: ClientVerb {
        static let configuration = CommandConfiguration(commandName: "archive", abstract: "Archive a dataset.")
        @OptionGroup var client: ClientOptions
        @Argument var dataset: String
        @Option var reason: String?

        func perform(_ api: StrataClient) async throws {
            try await LifecycleVerb.post(
                self, api, dataset: dataset, action: "archive", body: reason.map { ["reason": .string($0)] } ?? [:])
        }
    }

    struct Restore: ClientVerb {
        static let configuration = CommandConfiguration(
            commandName: "restore", abstract: "Restore an archived dataset.")
        @OptionGroup var client: ClientOptions
        @Argument var dataset: String

        func perform(_ api: StrataClient) async throws {
            try await LifecycleVerb.post(self, api, dataset: dataset, action: "restore", body: [:])
        }
    }
}

struct RetireDataset: ClientVerb {
    static let configuration = CommandConfiguration(
        commandName: "retire", abstract: "Retire a dataset; --dry-run shows what would break.")
    @OptionGroup var client: ClientOptions
    @Argument var dataset: String
    @Option var reason: String
    @Flag(name: .customLong("dry-run")) var dryRun = false

    func perform(_ api: StrataClient) async throws {
        let id = try await api.datasetID(dataset)
        let body = CanonicalJSON.string(JSONValue.object(["reason": .string(reason), "dry_run": .bool(dryRun)]))
        show(try await api.send(.POST, "/v1/datasets/\(id)/retire", json: body)) { json in
            let impact = json["impact"]?.arrayValue ?? []
            let head =
                dryRun
                ? "retiring it would affect \(impact.count) dataset(s)"
                : "retired; \(impact.count) dataset(s) downstream"
            return head + (impact.isEmpty ? "" : "\n" + impactRows(impact))
        }
    }
}

struct CloneDataset: ClientVerb {
    static let configuration = CommandConfiguration(commandName: "clone", abstract: "Clone a dataset under a new name.")
    @OptionGroup var client: ClientOptions
    @Argument var dataset: String
    @Option var name: String
    @Option var namespace: String?
    @Option(name: .customLong("change-note")) var changeNote: String?

    func perform(_ api: StrataClient) async throws {
        let id = try await api.datasetID(dataset)
        var body: [String: JSONValue] = ["name": .string(name)]
        if let namespace { body["namespace"] = .string(namespace) }
        if let changeNote { body["change_note"] = .string(changeNote) }
        show(try await api.send(.POST, "/v1/datasets/\(id)/clone", json: CanonicalJSON.string(JSONValue.object(body))))
        {
            "cloned into \($0.qualifiedName): \($0.text("id"))"
        }
    }
}

struct DatasetVersions: ClientVerb {
    static let configuration = CommandConfiguration(commandName: "versions", abstract: "A dataset's versions.")
    @OptionGroup var client: ClientOptions
    @Argument var dataset: String
    @Option(name: .customLong("as-of")) var asOf: String?

    func perform(_ api: StrataClient) async throws {
        let id = try await api.datasetID(dataset, asOf: asOf)
        show(try await api.send(.GET, "/v1/datasets/\(id)/versions" + queryString([("as_of", asOf)]))) { json in
            TextTable.render(
                ["VERSION", "STATUS", "CREATED", "BY", "NOTE"],
                (json["versions"]?.arrayValue ?? []).map {
                    [
                        "v\($0["version"]?.intValue ?? 0)", $0["status"]?.stringValue ?? "",
                        $0["created_at"]?.stringValue ?? "", $0["created_by"]?.stringValue ?? "",
                        $0["change_note"]?.stringValue ?? "",
                    ]
                })
        }
    }
}

struct DatasetVersion: ClientVerb {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "One version: ID N.")
    @OptionGroup var client: ClientOptions
    @Argument var dataset: String
    @Argument var version: Int
    @Option(name: .customLong("as-of")) var asOf: String?

    func perform(_ api: StrataClient) async throws {
        let id = try await api.datasetID(dataset, asOf: asOf)
        show(try await api.send(.GET, "/v1/datasets/\(id)/versions/\(version)" + queryString([("as_of", asOf)]))) {
            let columns = ($0["schema"]?.arrayValue ?? []).map { $0.text("name") }.joined(separator: ", ")
            return [
                "v\($0["version"]?.intValue ?? 0) (\($0.text("status"))) by \($0.text("created_by")) at \($0.text("created_at"))",
                "location    \($0["location"]?.stringValue ?? "-")", "owner       \($0["owner"]?.stringValue ?? "-")",
                "columns     \(columns)", "note        \($0["change_note"]?.stringValue ?? "-")",
            ].joined(separator: "\n")
        }
    }
}

struct RecordLineage: ClientVerb {
    static let configuration = CommandConfiguration(
        commandName: "record-lineage", abstract: "Record that a job read --from datasets to make --to ones.")
    @OptionGroup var client: ClientOptions
    @Option(name: .customLong("from"), help: "An input: ID or NS/NAME, optionally @VERSION; repeat for several")
    var input: [String]
    @Option(name: .customLong("to"), help: "An output: ID or NS/NAME, optionally @VERSION; repeat for several")
    var output: [String]
    @Option(help: "The job, as namespace/name") var job: String?
    @Option(name: .customLong("run-id")) var runID: String?

    func perform(_ api: StrataClient) async throws {
        func end(_ text: String) async throws -> JSONValue {
            let parts = text.split(separator: "@", maxSplits: 1).map(String.init)
            var end: [String: JSONValue] = ["dataset_id": .string(try await api.datasetID(parts[0]))]
            if parts.count == 2 {
                guard let version = Int(parts[1]) else {
                    throw ValidationError("\(text): the version after @ must be a number")
                }
                end["version"] = .number(Double(version))
            }
            return .object(end)
        }
        var body: [String: JSONValue] = [:]
        var inputs: [JSONValue] = []
        for text in input { inputs.append(try await end(text)) }
        var outputs: [JSONValue] = []
        for text in output { outputs.append(try await end(text)) }
        body["inputs"] = .array(inputs)
        body["outputs"] = .array(outputs)
        if let job {
            guard let slash = job.lastIndex(of: "/") else { throw ValidationError("give the job as namespace/name") }
            body["job"] = .object([
                "namespace": .string(String(job[..<slash])), "name": .string(String(job[job.index(after: slash)...])),
            ])
        }
        if let runID { body["run_id"] = .string(runID) }
        show(try await api.send(.POST, "/v1/lineage", json: CanonicalJSON.string(JSONValue.object(body)))) {
            "recorded \($0["edges"]?.arrayValue?.count ?? 0) edge(s)"
        }
    }
}

struct DatasetHistory: ClientVerb {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "A dataset's audit trail: who did what, when and why.")
    @OptionGroup var client: ClientOptions
    @Argument var dataset: String
    @Option(name: .customLong("as-of"), help: "A log position or an RFC 3339 time") var asOf: String?

    func perform(_ api: StrataClient) async throws {
        let id = try await api.datasetID(dataset, asOf: asOf)
        let path = "/v1/datasets/\(id)/history" + queryString([("as_of", asOf)])
        show(try await api.send(.GET, path)) { eventRows($0["events"]?.arrayValue ?? [], stream: false) }
    }
}

struct DatasetUsages: ClientVerb {
    static let configuration = CommandConfiguration(commandName: "usages", abstract: "Who used which version.")
    @OptionGroup var client: ClientOptions
    @Argument var dataset: String
    @Option(name: .customLong("as-of"), help: "A log position or an RFC 3339 time") var asOf: String?

    func perform(_ api: StrataClient) async throws {
        let id = try await api.datasetID(dataset, asOf: asOf)
        show(try await api.send(.GET, "/v1/datasets/\(id)/usages" + queryString([("as_of", asOf)]))) { json in
            TextTable.render(
                ["CONSUMER", "VERSION", "KIND", "WHEN", "BY"],
                (json["usages"]?.arrayValue ?? []).map {
                    [
                        $0["consumer"]?.stringValue ?? "", "v\($0["version"]?.intValue ?? 0)",
                        $0["kind"]?.stringValue ?? "", $0["recorded_at"]?.stringValue ?? "",
                        $0["recorded_by"]?.stringValue ?? "",
                    ]
                })
        }
    }
}

struct UseDataset: ClientVerb {
    static let configuration = CommandConfiguration(
        commandName: "use", abstract: "Record that a consumer used a version: ID VERSION --consumer C.")
    @OptionGroup var client: ClientOptions
    @Argument var dataset: String
    @Argument var version: Int
    @Option var consumer: String
    @Option var kind: String?
    @Option(help: "A JSON object recorded with the usage, such as '{\"model\": \"v12\"}'") var properties: String?

    func perform(_ api: StrataClient) async throws {
        var body: [String: JSONValue] = ["consumer": .string(consumer)]
        if let kind { body["kind"] = .string(kind) }
        if let properties {
            guard case .object(let object) = try? JSONValue(parsing: properties) else {
                throw ClientFailure(exitCode: .invalid, message: "--properties must be a JSON object", problem: nil)
            }
            body["properties"] = .object(object)
        }
        let id = try await api.datasetID(dataset)
        let answer = try await api.send(
            .POST, "/v1/datasets/\(id)/versions/\(version)/usages", json: CanonicalJSON.string(JSONValue.object(body)))
        show(answer) { "recorded: \($0["consumer"]?.stringValue ?? "") used v\($0["version"]?.intValue ?? 0)" }
    }
}

/// Events as a table: who did what, when and why (the audit trail's questions); with `stream`, also
/// which dataset, for a log that mixes them.
func eventRows(_ events: [JSONValue], stream: Bool = true) -> String {
    TextTable.render(
        ["POSITION", "TYPE", "ACTOR", "RECORDED", "WHAT AND WHY"] + (stream ? ["STREAM"] : []),
        events.map {
            [
                "\($0["position"]?.intValue ?? 0)", $0.text("type"), eventActor($0), $0.text("recorded_at"),
                eventDetail($0),
            ] + (stream ? [$0.text("stream_id")] : [])
        })
}

/// The token that acted, and whom it acted for when the request said (`Strata-Actor`).
func eventActor(_ event: JSONValue) -> String {
    let actor = event["metadata"]?["actor"]?.stringValue ?? ""
    return event["metadata"]?["on_behalf_of"]?.stringValue.map { "\(actor) for \($0)" } ?? actor
}

/// What an event did, in a few words, and the reason or note it was given.
func eventDetail(_ event: JSONValue) -> String {
    let data = event["data"] ?? .null
    func version(_ value: JSONValue?) -> String { value?.intValue.map { "v\($0)" } ?? "" }
    var what: String
    var why = data["reason"]?.stringValue ?? data["change_note"]?.stringValue
    switch event.text("type") {
    case "DatasetCreated":
        what = data.text("namespace") + "/" + data.text("name")
        if let source = data["cloned_from"]?["dataset_id"]?.stringValue { what += ", cloned from \(source)" }
        why = why ?? data["version"]?["change_note"]?.stringValue
    case "DatasetVersionDrafted":
        // The change note is the why, shown in quotes, not one of the fields changed.
        let fields = (data["changed_fields"]?.arrayValue ?? []).compactMap(\.stringValue).filter { $0 != "change_note" }
        what = version(data["version"]?["version"]) + (fields.isEmpty ? "" : ": " + fields.joined(separator: ", "))
        why = why ?? data["version"]?["change_note"]?.stringValue
    case "DatasetPublished": what = version(data["version"])
    case "DatasetRestored": what = "to " + data.text("status")
    case "DatasetVersionUsed": what = version(data["version"]) + " by " + data.text("consumer")
    case "LineageRecorded":
        let inputs = data["inputs"]?.arrayValue?.count ?? 0
        what = "\(inputs) input\(inputs == 1 ? "" : "s") into " + version(data["output"]?["version"])
        if let job = data["job"], job != .null { what += ", job " + job.text("namespace") + "." + job.text("name") }
    case "TokenCreated": what = data.text("name") + " as " + data.text("role")
    case "TokenRevoked": what = data.text("name")
    default: what = ""
    }
    why = why ?? event["metadata"]?["reason"]?.stringValue
    return [what, why.map { "\"\($0)\"" }].compactMap { $0?.isEmpty == false ? $0 : nil }.joined(separator: " — ")
}

func impactRows(_ impact: [JSONValue]) -> String {
    TextTable.render(
        ["DISTANCE", "NAMESPACE/NAME", "STATUS"],
        impact.map {
            [
                "\($0["distance"]?.intValue ?? 0)", $0.qualifiedName, $0.text("status"),
            ]
        })
}
