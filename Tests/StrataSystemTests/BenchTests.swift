import EmbeddedPostgres
import Foundation
import StrataTestSupport
import Testing

/// `strata bench … --json`, which tracks the figures from run to run: standard output is one JSON
/// document naming the benchmark, whichever benchmark was asked, and the text figures stay on request.
@Suite("strata bench --json", .timeLimit(.minutes(3)))
struct BenchTests {
    @Test func aBenchmarkAskedForJSONPrintsOneDocumentOfItsFigures() async throws {
        try await withTestDatabase { database in
            let runs: [(arguments: [String], bench: String, figure: String)] = [
                (["rebuild", "--events", "400", "--rounds", "1"], "rebuild", "rebuild_median_events_per_second"),
                (
                    ["lineage", "--datasets", "150", "--edges", "450", "--queries", "3", "--depth", "3"], "lineage",
                    "both"
                ),
                (["search", "--datasets", "200", "--queries", "3"], "search", "workloads"),
            ]
            for run in runs {
                let arguments = [StrataBinary.path, "bench"] + run.arguments
                let json = try Self.standardOutput(arguments + ["--json"], databaseURL: database.url)
                #expect(json.status == 0, "\(json.output)")
                let document = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
                let figures = document?[run.bench] as? [String: Any]
                #expect(figures?[run.figure] != nil, "\(run.bench): \(json.output)")
                #expect(document?["measured_at"] is String)

                let text = try Self.standardOutput(arguments, databaseURL: database.url)
                #expect(text.status == 0 && !text.output.hasPrefix("{"), "\(text.output)")
            }
        }
    }

    /// `strata bench faults` runs on a cluster of its own and restarts it in immediate mode under load:
    /// the server lives through the restarts, its writers' acknowledged datasets are all kept (edited and
    /// published, where the edit and the publish were acknowledged), no retry conflicts with itself, no answer is a 5xx other than 503, every answer asked for again
    /// as of its position comes back the same, and its figures come as one document.
    @Test func theFaultBenchCountsWhatWasAcknowledgedAgainstWhatWasKept() async throws {
        let run = try Self.standardOutput(
            [
                StrataBinary.path, "bench", "faults", "--seconds", "10", "--restart-every", "2.5", "--writers", "4",
                "--readers", "4", "--events", "2000", "--json",
            ], databaseURL: "")
        #expect(run.status == 0, "\(run.output)")
        let document = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any]
        let figures = try #require(document?["faults"] as? [String: Any], "\(run.output)")
        #expect((figures["restarts"] as? Int ?? 0) >= 1)
        #expect((figures["acknowledged"] as? Int ?? 0) > 0)
        #expect(figures["lost"] as? Int == 0)
        #expect((figures["edits"] as? Int ?? 0) > 0)
        #expect(figures["edits_lost"] as? Int == 0)
        #expect(figures["conflicts"] as? Int == 0)
        #expect((figures["publishes"] as? Int ?? 0) > 0)
        #expect(figures["publishes_lost"] as? Int == 0)
        #expect(figures["server_errors"] as? Int == 0)
        #expect(figures["projections_match_the_log"] as? Bool == true)
        #expect((figures["as_of_replays"] as? Int ?? 0) > 0)
        #expect(figures["as_of_differed"] as? Int == 0)
        #expect(figures["vanished"] as? Int == 0)
        #expect((figures["openlineage_runs"] as? Int ?? 0) > 0)
        #expect(figures["openlineage_runs_lost"] as? Int == 0)
    }

    /// What the command printed on standard output alone (its progress and logs go to standard error).
    static func standardOutput(_ command: [String], databaseURL: String) throws -> (status: Int32, output: String) {
        let run = try ProcessRunner.run(
            ["/usr/bin/env", "DATABASE_URL=\(databaseURL)", "/bin/sh", "-c", #"exec "$0" "$@" 2>/dev/null"#] + command)
        return (run.status, run.output)
    }
}
