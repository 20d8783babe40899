import Foundation
import PostgresNIO
import StrataCore

/// The log replayed by several ``ProjectionReplay``s side by side, one per core, each owning the
/// streams whose id falls to it. Rows depend only on their own stream, so the split changes nothing
/// in what is written.
struct ParallelReplay: Sendable {
    private let partitions: [Partition]
    /// The position of the last event replayed, whichever partition took it.
    private(set) var position: Int64 = 0

    actor Partition {
        private var replay: ProjectionReplay<CopyRows>

        init(tables: Set<String>) {
            replay = ProjectionReplay<CopyRows>(tables: tables)
        }

        /// Replays this partition's share of `events`, in one call: the actor's state is reached
        /// once per batch, not checked for exclusive access once per event.
        func apply(_ events: [ReplayEvent], share: Int, of shares: Int) throws -> CopyRows {
            try replay.apply(events, share: share, of: shares)
            return replay.takePending()
        }

        func closeOut() -> CopyRows {
            replay.closeOut()
            return replay.takePending()
        }
    }

    init(tables: Set<String>, partitions: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.partitions = (0..<min(max(partitions, 1), 16)).map { _ in Partition(tables: tables) }
    }

    private func partition(of stream: UUID) -> Partition {
        partitions[ProjectionReplay<CopyRows>.share(of: stream, among: partitions.count)]
    }

    /// Replays `events` (in log order), each partition its share at the same time; answers the rows made.
    mutating func apply(_ events: [ReplayEvent]) async throws -> CopyRows {
        guard let last = events.last else { return CopyRows() }
        let shares = partitions.count
        let rows = try await withThrowingTaskGroup(of: CopyRows.self) { group in
            for (share, partition) in partitions.enumerated() {
                group.addTask { try await partition.apply(events, share: share, of: shares) }
            }
            var rows = CopyRows()
            for try await share in group { rows.append(share) }
            return rows
        }
        position = last.position
        return rows
    }

    /// The rows still open, with no end: the projections at the replayed position.
    func closeOut() async -> CopyRows {
        var rows = CopyRows()
        for partition in partitions { rows.append(await partition.closeOut()) }
        return rows
    }
}

/// Builds projection tables in a schema of their own from the log: creates them, replays the log into
/// them with COPY, and builds their indexes and constraints once the rows are in.
public struct BulkLoad: Sendable {
    let schema: String
    let definitions: [ProjectionCatalog.Definition]
    let batchSize: Int
    let logger: Logger

    /// Time spent in each stage of a bulk load.
    public struct Stages: Sendable {
        /// Waiting for the log to be read (what reading did not hide behind the other stages).
        public var reading: Duration = .zero
        /// Replaying events into rows.
        public var projecting: Duration = .zero
        /// Waiting for COPY (what loading did not hide behind the other stages).
        public var loading: Duration = .zero
        /// Loading the rows still open at the end, building indexes and constraints, and committing.
        /// (Statistics are left to autovacuum: analysing the tables cost a third as much as building
        /// the indexes, when the tables still held every version's document.)
        public var finishing: Duration = .zero
    }

    /// A connection that loads some of the tables, in a transaction of its own that also creates them
    /// (so PostgreSQL can skip the WAL for their rows when `wal_level` is `minimal`).
    private struct Loader: Sendable {
        let connection: PostgresConnection
        let tables: Set<String>
        /// The statements that build the tables' indexes and constraints, deferred to the end.
        var indexes: [String] = []
    }

    /// Creates the tables and loads the log up to `head` into them.
    ///
    /// With `loading` connections, the tables are shared out between them by `weights` (what loading
    /// each will roughly cost), each loads its share in a transaction of its own, and reading the log (on
    /// `reading` and `alsoReading`), replaying and loading all overlap, as do the loaders' index builds.
    /// Without any, everything happens on `reading`, in the caller's transaction, one stage after the
    /// other.
    @discardableResult
    func run(
        _ replay: inout ParallelReplay,
        upTo head: Int64,
        reading: PostgresConnection,
        alsoReading: [PostgresConnection] = [],
        loading: [PostgresConnection],
        weights: [String: Int64] = [:],
        progress: (Int64) -> Void
    ) async throws -> Stages {
        var stages = Stages()
        let clock = ContinuousClock()
        let ownTransactions = !loading.isEmpty
        try await (loading.first ?? reading).perform("CREATE SCHEMA \(unescaped: schema)", logger: logger)
        var loaders = share(definitions, among: ownTransactions ? loading : [reading], by: weights)
        do {
            for index in loaders.indices {
                loaders[index].indexes = try await prepare(loaders[index], ownTransaction: ownTransactions)
            }
            var done: Int64 = 0
            if ownTransactions {
                try await pipeline(
                    &replay, upTo: head, readers: [reading] + alsoReading, loaders: loaders, stages: &stages
                ) { count in
                    done += Int64(count)
                    progress(done)
                }
            } else {
                while replay.position < head {
                    var events: [ReplayEvent] = []
                    stages.reading += try await clock.measure {
                        events = try await ReplayEvent.read(
                            after: replay.position, upTo: head, limit: batchSize, on: reading, logger: logger)
                    }
                    var rows = CopyRows()
                    stages.projecting += try await clock.measure { rows = try await replay.apply(events) }
                    stages.loading += try await clock.measure { try await load(rows, into: loaders) }
                    done += Int64(events.count)
                    progress(done)
                }
            }
            let rest = await replay.closeOut()
            stages.finishing += try await clock.measure {
                // Each loader goes on to its indexes as soon as its own last rows are in, while the other
                // may still be loading.
                try await eachLoader(loaders) { loader in
                    try await rest.load(loader.tables, on: loader.connection, logger: logger)
                    try await loader.connection.perform("SET LOCAL maintenance_work_mem = '256MB'", logger: logger)
                    for statement in loader.indexes {
                        try await loader.connection.perform(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await loader.connection.perform("SET LOCAL search_path TO public", logger: logger)
                    if ownTransactions { try await loader.connection.perform("COMMIT", logger: logger) }
                }
            }
            return stages
        } catch {
            if ownTransactions {
                for loader in loaders { try? await loader.connection.perform("ROLLBACK", logger: logger) }
            }
            throw error
        }
    }

    /// The projections shared out between the connections, the heaviest first to the least loaded.
    private func share(
        _ definitions: [ProjectionCatalog.Definition], among connections: [PostgresConnection],
        by weights: [String: Int64]
    ) -> [Loader] {
        var shares = [(tables: Set<String>, weight: Int64)](repeating: ([], 0), count: connections.count)
        let heaviestFirst = definitions.map(\.name).sorted { (weights[$0] ?? 0, $1) > (weights[$1] ?? 0, $0) }
        for name in heaviestFirst {
            let lightest =
                shares.indices.min {
                    (shares[$0].weight, shares[$0].tables.count) < (shares[$1].weight, shares[$1].tables.count)
                } ?? 0
            shares[lightest].tables.insert(name)
            shares[lightest].weight += weights[name] ?? 0
        }
        return zip(connections, shares).map { Loader(connection: $0, tables: $1.tables) }
    }

    /// Creates a loader's tables and drops their indexes, answering the statements that make them again.
    private func prepare(_ loader: Loader, ownTransaction: Bool) async throws -> [String] {
        let connection = loader.connection
        if ownTransaction { try await connection.perform("BEGIN", logger: logger) }
        try await connection.perform("SET LOCAL search_path TO \(unescaped: schema), public", logger: logger)
        for definition in definitions where loader.tables.contains(definition.name) {
            try await definition.script.run(on: connection, logger: logger)
        }
        return try await deferIndexes(of: loader.tables, on: connection)
    }

    /// Runs `body` for every loader at the same time.
    private func eachLoader(_ loaders: [Loader], _ body: @escaping @Sendable (Loader) async throws -> Void)
        async throws
    {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for loader in loaders { group.addTask { try await body(loader) } }
            try await group.waitForAll()
        }
    }

    private func load(_ rows: CopyRows, into loaders: [Loader]) async throws {
        let logger = logger
        try await eachLoader(loaders) { loader in
            try await rows.load(loader.tables, on: loader.connection, logger: logger)
        }
    }

    /// Replays batch n while the batches after it are read (one at a time on each of `readers`) and
    /// batch n-1 is loaded. Batches are spans of positions rather than counts of events, so each read
    /// can start without waiting for the one before it; a span may hold fewer events (positions have
    /// holes), never more.
    private func pipeline(
        _ replay: inout ParallelReplay,
        upTo head: Int64,
        readers: [PostgresConnection],
        loaders: [Loader],
        stages: inout Stages,
        progress: (Int) -> Void
    ) async throws {
        let (batchSize, logger) = (batchSize, logger)
        var nextStart = replay.position
        var started = 0
        var reads: [Task<[ReplayEvent], any Error>] = []
        // Batch k is read on reader k mod n: the one batch k - n, just taken, had.
        func readAhead() {
            while reads.count < readers.count, nextStart < head {
                let (start, end) = (nextStart, min(head, nextStart + Int64(batchSize)))
                let reader = readers[started % readers.count]
                reads.append(
                    Task {
                        try await ReplayEvent.read(
                            after: start, upTo: end, limit: batchSize, on: reader, logger: logger)
                    }
                )
                (nextStart, started) = (end, started + 1)
            }
        }
        var loading: Task<Void, any Error>?
        let clock = ContinuousClock()
        do {
            readAhead()
            while let read = reads.first {
                var events: [ReplayEvent] = []
                stages.reading += try await clock.measure { events = try await read.value }
                reads.removeFirst()
                readAhead()
                var rows = CopyRows()
                stages.projecting += try await clock.measure { rows = try await replay.apply(events) }
                stages.loading += try await clock.measure { try await loading?.value }
                let batch = rows
                loading = Task { try await load(batch, into: loaders) }
                progress(events.count)
            }
            stages.loading += try await clock.measure { try await loading?.value }
        } catch {
            // No connection goes back to the pool while a statement of ours still runs on it.
            for read in reads { _ = try? await read.value }
            _ = try? await loading?.value
            throw error
        }
    }

    /// Drops the indexes and unique constraints of `tables`, and answers the statements that make them
    /// again: one sorted build per index after the load is far cheaper than keeping them up row by row.
    private func deferIndexes(of tables: Set<String>, on connection: PostgresConnection) async throws -> [String] {
        let names = Array(tables)
        let rows = try await connection.rows(
            """
            SELECT format('ALTER TABLE %I.%I DROP CONSTRAINT %I', n.nspname, t.relname, c.conname),
                   format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', n.nspname, t.relname, c.conname,
                          pg_get_constraintdef(c.oid)),
                   0
            FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = \(schema) AND t.relname = ANY(\(names)) AND c.contype IN ('p', 'u', 'x')
            UNION ALL
            SELECT format('DROP INDEX %I.%I', n.nspname, i.relname), pg_get_indexdef(x.indexrelid), 1
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
            JOIN pg_class t ON t.oid = x.indrelid
            WHERE n.nspname = \(schema) AND t.relname = ANY(\(names))
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
            ORDER BY 3, 1
            """,
            logger: logger
        )
        let statements: [(drop: String, create: String)] = try rows.map { row in
            let (drop, create, _) = try row.decode((String, String, Int).self)
            return (drop, create)
        }
        for statement in statements {
            try await connection.perform(PostgresQuery(unsafeSQL: statement.drop), logger: logger)
        }
        return statements.map(\.create)
    }
}
