import Foundation
import PostgresNIO
import StrataStore
import StrataTestSupport
import Testing

@Suite("Log positions follow commit order")
struct CommitOrderTests {
    /// Writers in two independent connection pools append to their own streams while a poller follows
    /// the log with `readAll(after:)`. If positions could commit out of order, the poller would at some
    /// point see position P+k before P and skip P forever; it must instead see a gap-free prefix each
    /// time (holes from rolled-back appends aside, of which this test makes none) and, in the end,
    /// every event exactly once.
    @Test func aPollerFollowingTheLogNeverSkipsAnEventWrittenByConcurrentPools() async throws {
        try await withTestDatabase { database in
            let pools = [database.client, database.makeClient()]
            let writersPerPool = 4
            let appendsPerWriter = 40
            let expectedTotal = pools.count * writersPerPool * appendsPerWriter

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await pools[1].run() }
                for pool in pools {
                    let store = EventStore(client: pool, logger: database.logger)
                    for _ in 0..<writersPerPool {
                        group.addTask {
                            let stream = UUID()
                            for version in 0..<appendsPerWriter {
                                try await store.append(
                                    [sampleEvent()], to: stream, expectedVersion: .exactly(Int64(version)))
                            }
                        }
                    }
                }
                let poller = EventStore(client: database.client, logger: database.logger)
                var seen: [Int64] = []
                var lastSeen: Int64 = 0
                // A bound on waiting, not a figure: under the whole suite on two cores, 320 appends have
                // taken more than two minutes.
                let deadline = ContinuousClock.now + .seconds(300)
                while seen.count < expectedTotal && ContinuousClock.now < deadline {
                    for event in try await poller.readAll(after: lastSeen, limit: 7) {
                        // Nothing is ever rolled back here, so the log has no holes: each new event must
                        // be exactly the next position. Seeing a later one first means one was skipped.
                        #expect(event.position == lastSeen + 1, "skipped from \(lastSeen) to \(event.position)")
                        lastSeen = event.position
                        seen.append(event.position)
                    }
                }
                #expect(seen.count == expectedTotal)
                #expect(Set(seen).count == seen.count)
                #expect(try await poller.lastPosition() == Int64(expectedTotal))
                group.cancelAll()
            }
        }
    }
}
