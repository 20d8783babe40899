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
