import StrataStore
import Testing

/// A replica is stuck when it has trailed the primary for a while without replaying anything, not when
/// the primary has been quiet: the first write after an idle minute leaves every replica behind for a
/// moment, and that is not a reason to stop reading from them.
@Suite("Replay progress of a replica")
struct ReplayProgressTests {
    @Test func onlyTrailingWithoutReplayingCountsAsStalled() {
        let start = ContinuousClock.now
        var progress = ReplayProgress()
        // Level with a primary that then stays quiet for a minute.
        #expect(progress.observe(replayed: 10, behind: 0, at: start) == .zero)
        #expect(progress.observe(replayed: 10, behind: 0, at: start + .seconds(60)) == .zero)
        // The primary writes; the replica has not replayed it yet: trailing since it was last seen level.
        #expect(progress.observe(replayed: 10, behind: 1, at: start + .seconds(61)) == .seconds(1))
        #expect(progress.observe(replayed: 10, behind: 3, at: start + .seconds(75)) == .seconds(15))
        // It replays something, still behind: moving, not stuck.
        #expect(progress.observe(replayed: 11, behind: 2, at: start + .seconds(80)) == .zero)
        #expect(progress.observe(replayed: 11, behind: 2, at: start + .seconds(112)) == .seconds(32))
        // Caught up.
        #expect(progress.observe(replayed: 13, behind: 0, at: start + .seconds(113)) == .zero)
    }
}
