import Synchronization
import Testing

@testable import StrataStore

@Suite("Deadlines")
struct DeadlineTests {
    /// What an operation makes after its deadline has answered goes to `abandoned`, not nowhere: the
    /// health monitor's connection, opened too late, must still be closed (PostgresNIO traps on a
    /// connection let go unclosed, and in a release build it would stay open).
    @Test func aValueMadeAfterTheDeadlineIsHandedOver() async throws {
        let handedOver = AsyncStream<Int>.makeStream()
        await #expect(throws: DatabaseUnavailable.self) {
            try await withDeadline(.milliseconds(50)) {
                try await Task.sleep(for: .milliseconds(300))
                return 7
            } abandoned: { late in
                handedOver.continuation.yield(late)
            }
        }
        var iterator = handedOver.stream.makeAsyncIterator()
        #expect(await iterator.next() == 7)
    }

    @Test func aValueMadeInTimeIsAnsweredAndNotHandedOver() async throws {
        let handedOver = Mutex(false)
        let value = try await withDeadline(.seconds(10)) {
            7
        } abandoned: { _ in
            handedOver.withLock { $0 = true }
        }
        #expect(value == 7)
        #expect(!handedOver.withLock { $0 })
    }
}
