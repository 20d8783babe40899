import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import StrataCore
import Synchronization

/// The API tokens that are not revoked, in memory, by the SHA-256 of their secrets: recognising a
/// token costs a hash and a lookup, not a query.
///
/// It is a projection like any other: it knows the log position of the last token event it reflects.
/// Run as a service it looks four times a second for a newer one (one indexed query), and reloads
/// when there is; a lookup that finds it more than a second behind reloads first. So a revocation
/// is honoured by every process sharing the database within a second. A secret it does not know makes
/// it look again, unless a look began after the request arrived: a token granted on another process
/// is recognised as soon as that process has answered the grant. A process that grants or revokes a
/// token itself reloads before it answers.
public final class TokenDirectory: Service, Sendable {
    private struct Snapshot: Sendable {
        var callers: [String: Caller] = [:]
        var position: Int64 = -1
        var checkedAt: ContinuousClock.Instant?
    }

    private let pool: BoundedPool
    private let logger: Logger
    private let snapshot = Mutex(Snapshot())
    /// The one look at the database under way (and when it began), which every lookup that needs one
    /// waits for.
    private let looking = Mutex<(task: Task<Void, any Error>, began: ContinuousClock.Instant)?>(nil)

    public static let maximumAge: Duration = .seconds(1)
    static let pollInterval: Duration = .milliseconds(250)

    public init(pool: BoundedPool, logger: Logger) {
        self.pool = pool
        self.logger = logger
    }

    /// The caller a secret authenticates, or nil for a secret no valid token has.
    public func caller(presenting secret: String) async throws -> Caller? {
        let arrived = ContinuousClock.now
        let hash = TokenSecret.sha256(secret)
        let (known, checkedAt) = snapshot.withLock { ($0.callers[hash], $0.checkedAt) }
        let isStale = checkedAt.map { $0.duration(to: arrived) > Self.maximumAge } ?? true
        guard isStale || known == nil else { return known }
        // An unknown secret may be a token granted a moment ago, elsewhere: ask a look that began after
        // this request did, and trust its answer.
        try await look(beganAfter: isStale ? nil : arrived)
        return snapshot.withLock { $0.callers[hash] }
    }

    /// Whether the token whose secret has this SHA-256 still stands for `caller`, from what the directory
    /// holds now, without asking the database: for a caller already authenticated that asks again often
    /// (a live tail before each write). The directory catches up four times a second, and at once with a
    /// grant or revocation made by this process.
    public func stands(digest: String, for caller: Caller) -> Bool {
        snapshot.withLock { $0.callers[digest] } == caller
    }

    /// Reloads now, in a look that begins after this call: for a process that has just granted or
    /// revoked a token and must answer with it in force.
    public func reload() async throws {
        try await look(beganAfter: .now)
    }

    /// Whether any token is valid, for the bootstrap at start-up.
    public func isEmpty() async throws -> Bool {
        try await look()
        return snapshot.withLock { $0.callers.isEmpty }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await look()
            } catch {
                logger.debug("could not look for token changes", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await eventLoopSleep(for: Self.pollInterval) }
        }
    }

    /// Looks for a newer token event and reloads if there is one. Concurrent callers share one look; a
    /// caller that needs a look begun after `instant` waits for one, starting it if none is under way.
    private func look(beganAfter instant: ContinuousClock.Instant? = nil) async throws {
        while true {
            if let instant, let checkedAt = snapshot.withLock({ $0.checkedAt }), checkedAt >= instant { return }
            let look = joinOrBeginLook()
            defer { looking.withLock { if $0?.task == look.task { $0 = nil } } }
            try await look.task.value
            if let instant, look.began < instant { continue }
            return
        }
    }

    /// The look under way, or a new one.
    private func joinOrBeginLook() -> (task: Task<Void, any Error>, began: ContinuousClock.Instant) {
        looking.withLock { current in
            if let current { return current }
            let began = ContinuousClock.now
            let look = (task: Task { try await self.reloadIfChanged(began: began) }, began: began)
            current = look
            return look
        }
    }

    private func reloadIfChanged(began started: ContinuousClock.Instant) async throws {
        let known = snapshot.withLock { $0.position }
        let logger = logger
        let loaded = try await pool.reading { connection -> Snapshot? in
            let position = try await Self.lastTokenEvent(on: connection, logger: logger)
            guard position != known else { return nil }
            var callers: [String: Caller] = [:]
            let rows = try await connection.rows(
                "SELECT secret_sha256, name, role, namespaces, token_id FROM api_tokens WHERE valid_to IS NULL",
                logger: logger)
            for row in rows {
                let (hash, name, role, namespaces, id) = try row.decode((String, String, String, [String], UUID).self)
                guard let role = Role(rawValue: role) else { continue }
                callers[hash] = Caller(name: name, role: role, scope: NamespaceScope(namespaces), tokenID: id)
            }
            return Snapshot(callers: callers, position: position, checkedAt: started)
        }
        snapshot.withLock { current in
            if let loaded { current = loaded } else { current.checkedAt = started }
        }
    }

    /// The position of the newest token event: two index lookups.
    private static func lastTokenEvent(on connection: PostgresConnection, logger: Logger) async throws -> Int64 {
        try await connection.rows(
            """
            SELECT greatest(
                (SELECT coalesce(max(global_position), 0) FROM events WHERE event_type = 'TokenCreated'),
                (SELECT coalesce(max(global_position), 0) FROM events WHERE event_type = 'TokenRevoked'))
            """,
            logger: logger
        ).first?.decode(Int64.self) ?? 0
    }
}
