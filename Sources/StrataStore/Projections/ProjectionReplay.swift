import Foundation
import PostgresNIO
import StrataCore

/// Replays the log through ``DatasetProjector`` in memory and turns its changes into finished rows for
/// bulk loading: a row is written once, when it is closed (or at the end, still open), so a rebuild
/// inserts every row exactly once with `COPY` and never updates.
struct ProjectionReplay {
    /// The projection tables being built; changes to other tables are ignored.
    let tables: Set<String>
    private(set) var states: [UUID: DatasetState] = [:]
    private(set) var position: Int64 = 0
    private var openDatasets: [UUID: (row: DatasetProjector.DatasetRow, from: Int64)] = [:]
    private var openVersions: [VersionKey: (row: DatasetProjector.VersionRow, from: Int64)] = [:]
    private var openNames: [UUID: (key: [UInt8], from: Int64)] = [:]
    /// Finished rows per table, as COPY text lines, waiting to be flushed.
    private(set) var pending: [String: [String]] = [:]

    private struct VersionKey: Hashable {
        var dataset: UUID
        var version: Int
    }

    init(tables: Set<String>) {
        self.tables = tables
    }

    /// The changes one event makes, given the replayed state; also advances that state.
    mutating func changes(for event: RecordedEvent) throws -> [DatasetProjector.Change] {
        let (domainEvent, context) = try event.datasetEvent()
        let before = states[event.streamID] ?? DatasetState(id: event.streamID)
        let after = before.evolve(domainEvent, context: context)
        states[event.streamID] = after
        position = event.position
        return DatasetProjector.changes(
            from: before, to: after, event: domainEvent, context: context, position: event.position
        ).filter { tables.contains($0.table) }
    }

    /// Replays one event into the pending rows.
    mutating func apply(_ event: RecordedEvent) throws {
        for change in try changes(for: event) {
            record(change, at: event.position)
        }
    }

    private mutating func record(_ change: DatasetProjector.Change, at position: Int64) {
        switch change {
        case .closeDataset(let id):
            if let open = openDatasets.removeValue(forKey: id) { emit(open.row, from: open.from, to: position) }
        case .openDataset(let row):
            openDatasets[row.datasetID] = (row, position)
        case .closeVersion(let id, let version):
            if let open = openVersions.removeValue(forKey: VersionKey(dataset: id, version: version)) {
                emit(open.row, from: open.from, to: position)
            }
        case .openVersion(let row):
            openVersions[VersionKey(dataset: row.datasetID, version: row.version)] = (row, position)
        case .reserveName(let key, let id):
            openNames[id] = (key, position)
        case .releaseName(let id):
            if let open = openNames.removeValue(forKey: id) { emitName(open.key, id, from: open.from, to: position) }
        case .addEdge(let edge):
            pending["lineage_edges", default: []].append(
                CopyText.line([
                    CopyText.uuid(edge.to.datasetID), "\(edge.to.version)", CopyText.uuid(edge.from.datasetID),
                    "\(edge.from.version)", "\(position)", CopyText.null,
                    edge.job.map { CopyText.text($0.namespace) } ?? CopyText.null,
                    edge.job.map { CopyText.text($0.name) } ?? CopyText.null,
                    edge.runID.map(CopyText.text) ?? CopyText.null, "\(edge.ordinal)",
                ])
            )
        case .addUsage(let row):
            pending["dataset_usages", default: []].append(
                CopyText.line([
                    CopyText.uuid(row.datasetID), "\(position)", CopyText.null, "\(row.version)",
                    CopyText.text(row.consumer), CopyText.text(row.document),
                ])
            )
        }
    }

    /// Moves every still-open row to the pending rows, with no end: the state at the replayed position.
    mutating func closeOut() {
        for (_, open) in openDatasets.sorted(by: { $0.key.uuidString < $1.key.uuidString }) {
            emit(open.row, from: open.from, to: nil)
        }
        for (_, open) in openVersions { emit(open.row, from: open.from, to: nil) }
        for (id, open) in openNames { emitName(open.key, id, from: open.from, to: nil) }
        openDatasets = [:]
        openVersions = [:]
        openNames = [:]
    }

    /// Hands over the pending rows and forgets them.
    mutating func takePending() -> [String: [String]] {
        defer { pending = [:] }
        return pending
    }

    private mutating func emit(_ row: DatasetProjector.DatasetRow, from: Int64, to: Int64?) {
        pending["datasets", default: []].append(
            CopyText.line([
                CopyText.uuid(row.datasetID), "\(from)", to.map { "\($0)" } ?? CopyText.null,
                CopyText.text(row.namespace),
                CopyText.text(row.name), CopyText.bytea(row.nameKey), CopyText.text(row.status), "\(row.streamVersion)",
                "\(row.latestVersion)", row.publishedVersion.map { "\($0)" } ?? CopyText.null,
                row.owner.map(CopyText.text) ?? CopyText.null, row.description.map(CopyText.text) ?? CopyText.null,
                CopyText.textArray(row.tags), CopyText.text(row.createdBy), CopyText.text(row.document),
            ])
        )
    }

    private mutating func emit(_ row: DatasetProjector.VersionRow, from: Int64, to: Int64?) {
        pending["dataset_versions", default: []].append(
            CopyText.line([
                CopyText.uuid(row.datasetID), "\(row.version)", "\(from)", to.map { "\($0)" } ?? CopyText.null,
                CopyText.text(row.status), CopyText.text(row.document),
            ])
        )
    }

    private mutating func emitName(_ key: [UInt8], _ id: UUID, from: Int64, to: Int64?) {
        pending["dataset_names", default: []].append(
            CopyText.line([CopyText.bytea(key), CopyText.uuid(id), "\(from)", to.map { "\($0)" } ?? CopyText.null])
        )
    }

    /// The column order of each table's COPY lines.
    static let columns: [String: [String]] = [
        "datasets": [
            "dataset_id", "valid_from", "valid_to", "namespace", "name", "name_key", "status", "stream_version",
            "latest_version", "published_version", "owner", "description", "tags", "created_by", "document",
        ],
        "dataset_versions": ["dataset_id", "version", "valid_from", "valid_to", "status", "document"],
        "dataset_names": ["name_key", "dataset_id", "valid_from", "valid_to"],
        "dataset_usages": ["dataset_id", "valid_from", "valid_to", "version", "consumer", "document"],
        "lineage_edges": [
            "to_dataset", "to_version", "from_dataset", "from_version", "valid_from", "valid_to", "job_namespace",
            "job_name", "run_id", "ordinal",
        ],
    ]

    /// Writes the pending rows into the tables `search_path` resolves first, with COPY.
    mutating func flush(on connection: PostgresConnection, logger: Logger) async throws {
        for (table, lines) in takePending() where !lines.isEmpty {
            try await connection.copyFrom(table: table, columns: Self.columns[table] ?? [], logger: logger) { writer in
                var buffer = ByteBuffer()
                for line in lines {
                    buffer.writeString(line)
                    if buffer.readableBytes > 1 << 20 {
                        try await writer.write(buffer)
                        buffer.clear()
                    }
                }
                if buffer.readableBytes > 0 { try await writer.write(buffer) }
            }
        }
    }
}

extension DatasetProjector.Change {
    /// The projection table the change writes.
    var table: String {
        switch self {
        case .closeDataset, .openDataset: return "datasets"
        case .closeVersion, .openVersion: return "dataset_versions"
        case .reserveName, .releaseName: return "dataset_names"
        case .addUsage: return "dataset_usages"
        case .addEdge: return "lineage_edges"
        }
    }
}

/// PostgreSQL's COPY text format: tab-separated, `\N` for NULL, backslash escapes.
enum CopyText {
    static let null = "\\N"

    static func line(_ fields: [String]) -> String {
        fields.joined(separator: "\t") + "\n"
    }

    static func text(_ value: String) -> String {
        // Scanning bytes, not Characters: grapheme breaking dominated the rebuild's profile.
        guard value.utf8.contains(where: { $0 == 0x5C || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else {
            return value
        }
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    static func uuid(_ value: UUID) -> String { value.uuidString.lowercased() }

    static func bytea(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = Array("\\\\x".utf8)
        text.reserveCapacity(text.count + bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// A `text[]` literal: every element quoted, `"` and `\` backslash-escaped.
    static func textArray(_ values: [String]) -> String {
        let elements = values.map { value in
            "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                + "\""
        }
        return text("{" + elements.joined(separator: ",") + "}")
    }
}
