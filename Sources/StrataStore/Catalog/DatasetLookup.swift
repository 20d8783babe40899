import Foundation
import PostgresNIO
import StrataCore

extension CatalogReader {
    /// One dataset by id, the read every client makes most: one prepared statement, which answers the
    /// document and the position its snapshot reflects together (one statement, one snapshot), instead
    /// of a transaction's four round trips and a fresh plan for its join each time.
    public func dataset(_ id: UUID, asOf: AsOf, scope: NamespaceScope) async throws
        -> (document: CatalogSnapshot.DatasetDocument?, position: Int64)
    {
        let namespaces = scope.namespaces
        let logger = logger
        let found: (CatalogSnapshot.DatasetDocument, Int64)?
        switch asOf {
        case .head:
            found = try await pool.withConnection { connection in
                try await connection.execute(CurrentDataset(id: id, namespaces: namespaces), logger: logger)
                    .first { _ in true }
            }
        case .position(let position):
            found = try await pool.withConnection { connection in
                try await connection.execute(
                    DatasetAsOf(id: id, namespaces: namespaces, position: max(0, position)), logger: logger
                ).first { _ in true }
            }
            // A snapshot that has not reached the position asked for cannot answer it.
            if let (_, head) = found, position > head {
                throw ReadError.asOfBeyondHead(requested: position, head: head)
            }
        case .time:
            found = nil
        }
        if let (document, head) = found {
            if case .position(let position) = asOf { return (document, position) }
            return (document, head)
        }
        // Not found, or as of a time: the general read says which, and from which position.
        let (document, position) = try await read(asOf: asOf, scope: scope) { try await $0.dataset(id) }
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
