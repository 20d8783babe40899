import Foundation
import PostgresNIO
import StrataCore

extension CatalogReader {
    /// One dataset by id, the read every client makes most: one prepared statement, which answers the
    /// document and the position its snapshot reflects together (one statement, one snapshot), instead
    /// of a transaction's four round trips and a fresh plan for its join each time.
    public func dataset(_ id: UUID, asOf: AsOf, scope: NamespaceScope, atLeast minimum: Int64? = nil) async throws
        -> (document: CatalogSnapshot.DatasetDocument?, position: Int64)
    {
        let namespaces = scope.namespaces
        let logger = logger
        /// The one statement on `pool`, and the log's head in the same snapshot.
        @Sendable func lookUp(on pool: BoundedPool) async throws -> (CatalogSnapshot.DatasetDocument, Int64)? {
            switch asOf {
            case .head:
                return try await pool.withConnection { connection in
                    try await connection.execute(CurrentDataset(id: id, namespaces: namespaces), logger: logger)
                        .first { _ in true }
                }
            case .position(let position):
                return try await pool.withConnection { connection in
                    try await connection.execute(
                        DatasetAsOf(id: id, namespaces: namespaces, position: max(0, position)), logger: logger
                    ).first { _ in true }
                }
            case .time:
                return nil
            }
        }
        var needed = minimum ?? 0
        if case .position(let position) = asOf { needed = max(needed, position) }
        // A replica answers if its snapshot has replayed as far as the read needs; one that does not
        // hold the dataset leaves the answer to the general read below, which knows how far it is.
        let onReplica: (CatalogSnapshot.DatasetDocument, Int64)?? = try await fromReplica { replica in
            guard let row = try await lookUp(on: replica) else { return .some(nil) }
            return row.1 >= needed ? .some(row) : nil
        }
        let found: (CatalogSnapshot.DatasetDocument, Int64)?
        if let onReplica { found = onReplica } else { found = try await lookUp(on: pool) }
        if let (document, head) = found {
            if case .position(let position) = asOf {
                // A snapshot that has not reached the position asked for cannot answer it.
                if position > head { throw ReadError.asOfBeyondHead(requested: position, head: head) }
                return (document, position)
            }
            return (document, head)
        }
        // Not found, or as of a time: the general read says which, and from which position.
        let (document, position) = try await read(asOf: asOf, scope: scope, atLeast: minimum) {
            try await $0.dataset(id)
        }
        return (document, position)
    }
}

/// A dataset's current document and the log's head, in one statement.
private struct CurrentDataset: PostgresPreparedStatement {
    static let sql = """
        SELECT \(CatalogSnapshot.documentColumns), (SELECT coalesce(max(global_position), 0) FROM events)
        FROM dataset_states s \(CatalogSnapshot.documentJoins)
        WHERE s.dataset_id = $1 AND s.valid_to IS NULL AND ($2::text[] IS NULL OR i.namespace = ANY($2::text[]))
        """

    typealias Row = (CatalogSnapshot.DatasetDocument, Int64)

    var id: UUID
    var namespaces: [String]?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(id)
        bindings.append(namespaces)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try decodeDocumentAndHead(row)
    }
}

/// A dataset's document as of a position, and the log's head, in one statement.
private struct DatasetAsOf: PostgresPreparedStatement {
    static let sql = """
        SELECT \(CatalogSnapshot.documentColumns), (SELECT coalesce(max(global_position), 0) FROM events)
        FROM dataset_states s \(CatalogSnapshot.documentJoins)
        WHERE s.dataset_id = $1 AND s.valid_from <= $3 AND (s.valid_to IS NULL OR s.valid_to > $3)
          AND ($2::text[] IS NULL OR i.namespace = ANY($2::text[]))
        """

    typealias Row = (CatalogSnapshot.DatasetDocument, Int64)

    var id: UUID
    var namespaces: [String]?
    var position: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(id)
        bindings.append(namespaces)
        bindings.append(position)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try decodeDocumentAndHead(row)
    }
}

private func decodeDocumentAndHead(_ row: PostgresRow) throws -> (CatalogSnapshot.DatasetDocument, Int64) {
    let (
        id, namespace, name, status, streamVersion, latestVersion, publishedVersion, owner, clonedFromID,
        clonedFromVersion, createdAt, createdBy, updatedAt, updatedBy, retiredReason, draftType, draftData, draftedAt,
        draftedBy, head
    ) = try row.decode(
        (
            UUID, String, String, String, Int64, Int, Int?, String?, UUID?, Int?, Date, String, Date, String, String?,
            String?, ByteBuffer?, Date?, String?, Int64
        ).self)
    let document = try CatalogSnapshot.datasetDocument(
        (
            id, namespace, name, status, streamVersion, latestVersion, publishedVersion, owner, clonedFromID,
            clonedFromVersion, createdAt, createdBy, updatedAt, updatedBy, retiredReason, draftType, draftData,
            draftedAt, draftedBy
        ))
    return (document, head)
}
