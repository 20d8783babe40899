import Logging
import PostgresNIO
import Synchronization

/// Runs `operation` in a task of its own and answers its result, or fails with
/// ``DatabaseUnavailable/Reason/timedOut`` once `limit` has passed: a query on a connection that closed
/// under it is never answered, so waiting for the operation itself could take forever. A value the
/// operation makes after that goes to `abandoned`, which must let go of what it holds (a connection
/// opened too late would otherwise never be closed).
func withDeadline<Value: Sendable>(
    _ limit: Duration,
    _ operation: @escaping @Sendable () async throws -> Value,
    abandoned: @escaping @Sendable (Value) async -> Void = { _ in }
) async throws -> Value {
    let answer = AnswerOnce<Value>()
    return try await withCheckedThrowingContinuation { continuation in
        answer.start(continuation)
        let timer = Task {
            guard (try? await eventLoopSleep(for: limit)) != nil else { return }
            answer.resume(with: .failure(DatabaseUnavailable(.timedOut)))
        }
        Task {
            let result: Result<Value, any Error>
            do { result = .success(try await operation()) } catch { result = .failure(error) }
            timer.cancel()
            if !answer.resume(with: result), case .success(let late) = result { await abandoned(late) }
        }
    }
}

/// A continuation resumed by the first of several racers; the others find it taken.
private final class AnswerOnce<Value: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<Value, any Error>?>(nil)

    func start(_ continuation: CheckedContinuation<Value, any Error>) {
        self.continuation.withLock { $0 = continuation }
    }

    /// Resumes the continuation with `result` unless another racer has; answers whether it did.
    @discardableResult
    func resume(with result: Result<Value, any Error>) -> Bool {
        guard let taken = continuation.withLock({ $0.take() }) else { return false }
        taken.resume(with: result)
        return true
    }
}

/// The connections a piece of work is using, any of which closing fails the work at once and ends the
/// others' sessions: the work is abandoned then, and what those sessions hold (a session's advisory
/// lock, an open transaction's locks) must not outlive it. They are ended by PostgreSQL
/// (`pg_terminate_backend`), not closed from here: PostgresNIO traps on a connection closed by its
/// client while a query is under way.
final class ConnectionWatch: Sendable {
    private let client: PostgresClient
    private let logger: Logger
    private let lost: @Sendable () -> Void
    private let state = Mutex(State())

    private struct State {
        /// The sessions of the connections in use, by connection.
        var using: [ObjectIdentifier: Int32] = [:]
        var isLost = false
        /// Ending the sessions that were in use when the work was lost.
        var ending: Task<Void, Never>?
    }

    fileprivate init(client: PostgresClient, logger: Logger, lost: @escaping @Sendable () -> Void) {
        self.client = client
        self.logger = logger
        self.lost = lost
    }

    /// Runs `body` on `connections`, failing the watched work if one of them closes meanwhile.
    func using<Value>(
        _ connections: PostgresConnection..., isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> sending Value
    ) async throws -> sending Value {
        try await using(connections, body)
    }

    /// Runs `body` on `connections`, failing the watched work if one of them closes meanwhile.
    func using<Value>(
        _ connections: [PostgresConnection], isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> sending Value
    ) async throws -> sending Value {
        var sessions: [ObjectIdentifier: Int32] = [:]
        for connection in connections {
            let pid = try await connection.rows("SELECT pg_backend_pid()", logger: logger).first?.decode(Int32.self)
            sessions[ObjectIdentifier(connection)] = pid
        }
        state.withLock { state in state.using.merge(sessions) { _, new in new } }
        for connection in connections {
            let key = ObjectIdentifier(connection)
            connection.closeFuture.whenComplete { [weak self] _ in self?.closed(key) }
        }
        let value: Value
        do {
            value = try await body()
        } catch {
            await release(sessions, of: connections)
            throw error
        }
        await release(sessions, of: connections)
        return value
    }

    private func closed(_ key: ObjectIdentifier) {
        let (client, logger) = (client, logger)
        let isFirst = state.withLock { state -> Bool in
            guard state.using[key] != nil, !state.isLost else { return false }
            state.isLost = true
            let others = state.using.filter { $0.key != key }.map(\.value)
            guard !others.isEmpty else { return true }
            state.ending = Task {
                // PostgreSQL may be gone, and the sessions with it; then there is nothing to end.
                try? await withDeadline(.seconds(5)) {
                    try await client.withConnection { connection in
                        try await connection.perform(
                            "SELECT pg_terminate_backend(pid) FROM unnest(\(others)) AS pid", logger: logger)
                    }
                }
            }
            return true
        }
        if isFirst { lost() }
    }

    /// Stops watching `sessions`. If the work was lost while they were watched, waits until they have
    /// been ended and their connections have closed: a connection let go of sooner would go back to the
    /// pool, and its session could be ended under the next user it was handed to.
    private func release(_ sessions: [ObjectIdentifier: Int32], of connections: [PostgresConnection]) async {
        let (wasLost, ending) = state.withLock { state in
            for key in sessions.keys { state.using.removeValue(forKey: key) }
            return (state.isLost, state.ending)
        }
        guard wasLost else { return }
        await ending?.value
        for connection in connections where !connection.isClosed {
            _ = try? await withDeadline(.seconds(5)) { try await connection.closeFuture.get() }
        }
    }
}

/// Runs `work` in a task of its own and answers when it ends, or with
/// ``DatabaseUnavailable/Reason/connectionLost`` as soon as a connection it uses (through the watch)
/// closes: PostgresNIO leaves a query, or a COPY, on a connection that dies unanswered, so the work
/// could otherwise wait forever. It is abandoned then; the sessions it still had are ended, through
/// `client`.
func withConnectionWatch<Value: Sendable>(
    client: PostgresClient, logger: Logger, _ work: @escaping @Sendable (ConnectionWatch) async throws -> Value
) async throws -> Value {
    let answer = AnswerOnce<Value>()
    let watch = ConnectionWatch(
        client: client, logger: logger, lost: { answer.resume(with: .failure(DatabaseUnavailable(.connectionLost))) })
    return try await withCheckedThrowingContinuation { continuation in
        answer.start(continuation)
        Task {
            let result: Result<Value, any Error>
            do { result = .success(try await work(watch)) } catch { result = .failure(error) }
            answer.resume(with: result)
        }
    }
}

extension PostgresConnection {
    /// Runs `operation` in a task of its own and answers its result, or fails with
    /// ``DatabaseUnavailable/Reason/connectionLost`` as soon as this connection closes, for an operation
    /// PostgresNIO may never answer once its connection is gone (a COPY). It is abandoned then, holding
    /// only what it captured.
    func untilClosed<Value: Sendable>(_ operation: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let answer = AnswerOnce<Value>()
        return try await withCheckedThrowingContinuation { continuation in
            answer.start(continuation)
            closeFuture.whenComplete { _ in answer.resume(with: .failure(DatabaseUnavailable(.connectionLost))) }
            Task {
                let result: Result<Value, any Error>
                do { result = .success(try await operation()) } catch { result = .failure(error) }
                answer.resume(with: result)
            }
        }
    }
}
