import PostgresNIO
import Synchronization

/// What Strata has done to each open connection that outlives one use of it: the statements prepared
/// on it (see ``ExecutedStatement``) and whether it has its ``UnaskedReadCompleteFilter``.
final class ConnectionRecords: Sendable {
    static let shared = ConnectionRecords()

    private struct Entry {
        /// Weak, and compared on every look-up, so that a new connection that happens to take a closed
        /// one's address is not taken for it.
        weak var connection: PostgresConnection?
        var prepared: Set<String> = []
        var isFiltered = false
    }

    private let entries = Mutex<[ObjectIdentifier: Entry]>([:])

    func holds(_ name: String, on connection: PostgresConnection) -> Bool {
        entries.withLock { entries in
            guard let entry = entries[ObjectIdentifier(connection)], entry.connection === connection else {
                return false
            }
            return entry.prepared.contains(name)
        }
    }

    func recordPrepared(_ name: String, on connection: PostgresConnection) {
        update(connection) { $0.prepared.insert(name) }
    }

    /// Records that `connection` has its filter; false if it already had.
    func markFiltered(_ connection: PostgresConnection) -> Bool {
        update(connection) { entry in
            defer { entry.isFiltered = true }
            return !entry.isFiltered
        }
    }

    private func update<Result>(_ connection: PostgresConnection, _ change: (inout Entry) -> Result) -> Result {
        let key = ObjectIdentifier(connection)
        let (result, isNew) = entries.withLock { entries in
            var isNew = false
            if entries[key]?.connection !== connection {
                entries[key] = Entry(connection: connection)
                isNew = true
            }
            return (change(&entries[key]!), isNew)
        }
        // Registered after the entry is made, so that a connection already closed removes it at once.
        if isNew {
            connection.closeFuture.whenComplete { [weak self, weak connection] _ in
                self?.entries.withLock { entries in
                    if entries[key]?.connection == nil || entries[key]?.connection === connection {
                        entries[key] = nil
                    }
                }
            }
        }
        return result
    }
}
