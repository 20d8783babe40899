import Foundation
import PostgresNIO
import StrataCore

/// The read side: datasets, versions, usages and history, answered from the projections (history from
/// the log itself). Documents come back as the projector stored them.
public struct CatalogReader: Sendable {
    public let client: PostgresClient
    public let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// A dataset's stored document and its stream version (the ETag).
    public struct DatasetDocument: Sendable, Equatable {
        public var id: UUID
        public var streamVersion: Int64
        public var document: String
    }

    public func dataset(_ id: UUID) async throws -> DatasetDocument? {
        try await first(
            client.query(
                """
                SELECT dataset_id, stream_version, document FROM datasets
                WHERE dataset_id = \(id) AND valid_to IS NULL
                """,
                logger: logger
            )
        )
    }

    /// The dataset that holds the name, or, if every holder was retired, the most recent of them.
    public func dataset(namespace: String, name: String) async throws -> DatasetDocument? {
        let key = ByteBuffer(bytes: DatasetProjector.nameKey(namespace, name))
        return try await first(
            client.query(
                """
                SELECT dataset_id, stream_version, document FROM datasets
                WHERE name_key = \(key) AND valid_to IS NULL AND namespace = \(namespace) AND name = \(name)
                ORDER BY (status = 'retired'), created_at DESC, dataset_id DESC
                LIMIT 1
                """,
                logger: logger
            )
        )
    }

    /// What `GET /v1/datasets` may filter on.
    public struct ListFilter: Sendable, Equatable {
        public var namespace: String?
        public var statuses: [DatasetStatus]
        public var tag: String?
        public var owner: String?
        public var createdBy: String?
        public var query: String?
        public var limit: Int
        /// Only datasets whose id sorts after this one: the cursor.
        public var after: UUID?

        public init(
            namespace: String? = nil, statuses: [DatasetStatus] = [.draft, .published], tag: String? = nil,
            owner: String? = nil, createdBy: String? = nil, query: String? = nil, limit: Int = 50, after: UUID? = nil
        ) {
            self.namespace = namespace
            self.statuses = statuses
            self.tag = tag
            self.owner = owner
            self.createdBy = createdBy
            self.query = query
            self.limit = limit
            self.after = after
        }
    }

    /// One page of datasets in id order (ids are time-ordered, so creation order), and the id to continue
    /// after if there may be more. Paging by id never repeats or skips a dataset that stays in the filter.
    public func datasets(_ filter: ListFilter) async throws -> (documents: [String], continueAfter: UUID?) {
        let statuses = filter.statuses.map(\.rawValue)
        let pattern = filter.query?.lowercased()
        let rows = try await client.query(
            """
            SELECT dataset_id, document FROM datasets
            WHERE valid_to IS NULL
              AND status = ANY(\(statuses))
              AND (\(filter.after)::uuid IS NULL OR dataset_id > \(filter.after))
              AND (\(filter.namespace)::text IS NULL OR namespace = \(filter.namespace))
              AND (\(filter.tag)::text IS NULL OR tags @> ARRAY[\(filter.tag)::text])
              AND (\(filter.owner)::text IS NULL OR owner = \(filter.owner))
              AND (\(filter.createdBy)::text IS NULL OR created_by = \(filter.createdBy))
              AND (\(pattern)::text IS NULL OR strpos(lower(name), \(pattern)) > 0
                   OR strpos(lower(coalesce(description, '')), \(pattern)) > 0)
            ORDER BY dataset_id
            LIMIT \(filter.limit + 1)
            """,
            logger: logger
        )
        var page: [(UUID, String)] = []
        for try await row in rows.decode((UUID, String).self) { page.append(row) }
        let more = page.count > filter.limit
        let shown = page.prefix(filter.limit)
        return (shown.map(\.1), more ? shown.last?.0 : nil)
    }

    /// All versions, newest first.
    public func versions(of id: UUID) async throws -> [String] {
        try await documents(
            client.query(
                """
                SELECT document FROM dataset_versions WHERE dataset_id = \(id) AND valid_to IS NULL
                ORDER BY version DESC
                """,
                logger: logger
            )
        )
    }

    public func version(_ number: Int, of id: UUID) async throws -> String? {
        try await documents(
            client.query(
                """
                SELECT document FROM dataset_versions
                WHERE dataset_id = \(id) AND version = \(number) AND valid_to IS NULL
                """,
                logger: logger
            )
        ).first
    }

    /// Usage pins, in the order they were recorded.
    public func usages(of id: UUID) async throws -> [String] {
        try await documents(
            client.query(
                "SELECT document FROM dataset_usages WHERE dataset_id = \(id) ORDER BY valid_from", logger: logger
            )
        )
    }

    /// The dataset's events, oldest first: its audit trail.
    public func history(of id: UUID) async throws -> [RecordedEvent] {
        try await EventStore(client: client, logger: logger).readStream(id)
    }

    /// The dataset folded from its events, for decisions that append nothing (a dry run).
    public func state(of id: UUID) async throws -> DatasetState {
        DatasetDecider.state(of: id, from: try await history(of: id).map { try $0.datasetEvent() })
    }

    /// The position of the dataset's last event, 0 if it has none.
    public func lastPosition(of id: UUID) async throws -> Int64 {
        let rows = try await client.query(
            "SELECT coalesce(max(global_position), 0) FROM events WHERE stream_id = \(id)", logger: logger
        )
        return try await rows.collect().first?.decode(Int64.self) ?? 0
    }

    private func first(_ rows: PostgresRowSequence) async throws -> DatasetDocument? {
        for try await (id, version, document) in rows.decode((UUID, Int64, String).self) {
            return DatasetDocument(id: id, streamVersion: version, document: document)
        }
        return nil
    }

    private func documents(_ rows: PostgresRowSequence) async throws -> [String] {
        var documents: [String] = []
        for try await document in rows.decode(String.self) { documents.append(document) }
        return documents
    }
}

extension RecordedEvent {
    /// The event as the API shows it (`/history`, `/v1/events`).
    public var document: String {
        struct Body: Encodable {
            let event: RecordedEvent
            enum CodingKeys: String, CodingKey {
                case position, type, data, metadata
                case streamID = "stream_id"
                case streamVersion = "stream_version"
                case eventID = "event_id"
                case schemaVersion = "schema_version"
                case occurredAt = "occurred_at"
                case recordedAt = "recorded_at"
            }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(event.position, forKey: .position)
                try container.encode(event.streamID.lowercased, forKey: .streamID)
                try container.encode(event.streamVersion, forKey: .streamVersion)
                try container.encode(event.eventID.lowercased, forKey: .eventID)
                try container.encode(event.type, forKey: .type)
                try container.encode(event.schemaVersion, forKey: .schemaVersion)
                try container.encode(
                    try JSONDecoder().decode(JSONValue.self, from: Data(event.data.utf8)), forKey: .data)
                try container.encode(
                    try JSONDecoder().decode(JSONValue.self, from: Data(event.metadata.utf8)), forKey: .metadata
                )
                try container.encode(Timestamp.string(from: event.occurredAt), forKey: .occurredAt)
                try container.encode(Timestamp.string(from: event.recordedAt), forKey: .recordedAt)
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(Body(event: self))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
