import Foundation
import StrataCore
import StrataTestSupport
import Testing

@Suite("A dataset's lifecycle")
struct DatasetLifecycleTests {
    /// A replay folds only the lifecycle; a write folds the whole state and projects its lifecycle. Both
    /// must land on the same rows, so the two folds must agree after any events, in any order; the
    /// lifecycle also counts the usage pins, which the whole state leaves out.
    @Test func theLifecycleFoldsAsTheWholeStateDoes() {
        var random = SplitMix(seed: 23)
        let context = EventContext(actor: "alice", occurredAt: Date(timeIntervalSince1970: 1_800_000_000))
        for _ in 0..<500 {
            let id = random.uuid()
            var state = DatasetState(id: id)
            var lifecycle = DatasetLifecycle(id: id)
            var (uses, lastUse): (Int, Int64?) = (0, nil)
            for position in Int64(1)...Int64(random.next(below: 30) + 1) {
                let event = random.datasetEvent()
                state.apply(event, context: context)
                lifecycle.apply(event, at: position)
                if case .versionUsed = event { (uses, lastUse) = (uses + 1, position) }
                var expected = DatasetLifecycle(state)
                (expected.usageCount, expected.lastUsed) = (uses, lastUse)
                #expect(lifecycle == expected, "after \(event.type)")
            }
        }
    }
}
