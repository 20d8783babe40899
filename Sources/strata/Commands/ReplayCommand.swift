import ArgumentParser
import Foundation
import StrataStore
import Synchronization

/// `strata replay`: rebuild projections from the log, while a server may keep serving.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay", abstract: "Rebuild projections from the event log, with progress."
    )

    @OptionGroup var database: DatabaseOptions
    @Option(help: "Rebuild only this projection (default: all)") var projection: [String] = []

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        let catalog = try ProjectionCatalog.bundled()
        let names = projection.isEmpty ? nil : projection
        let report = try await DatabaseSession.with(configuration, logger: logger, existingOnly: true) { client in
            try await MigrationRunner.bundled().migrate(client, logger: logger)
            return try await ProjectionMaintenance(client: client, catalog: catalog, logger: logger)
                .rebuild(names) { progress in ProgressLine.print(progress) }
        }
        ProgressLine.finish()
        print(
            "rebuilt \(report.projections.joined(separator: ", ")) up to position \(report.position) in \(report.elapsed)"
        )
        print(ProgressLine.stages(report.stages))
    }
}

/// `strata verify`: rebuild into a scratch schema and compare with the live projections.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check the projections against the log; exits non-zero on drift."
    )

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let configuration = try StrataConfiguration(database: database)
        let logger = configuration.makeLogger()
        let catalog = try ProjectionCatalog.bundled()
        let report = try await DatabaseSession.with(configuration, logger: logger, existingOnly: true) { client in
            // Refused, naming the file, on a catalog migrated otherwise than this build knows (as by every
            // command): its projections could not be compared with what this build would rebuild.
            _ = try await MigrationRunner.bundled().status(client, logger: logger)
            return try await ProjectionMaintenance(client: client, catalog: catalog, logger: logger)
                .verify { progress in ProgressLine.print(progress) }
        }
        ProgressLine.finish()
        for check in report.tables {
            let verdict = check.matches ? "ok" : "DRIFT"
            print("\(verdict)\t\(check.table)\tlive \(check.liveRows) rows, log says \(check.rebuiltRows) rows")
            if let difference = check.firstDifference { print("\tfirst difference: \(difference)") }
        }
        guard report.isClean else {
            print("projections differ from the log at position \(report.position); run `strata replay` to rebuild them")
            throw ExitCode(1)
        }
        print("all projections match the log at position \(report.position)")
    }
}

/// A single progress line on standard error: events done, events per second, time left.
enum ProgressLine {
    static func print(_ progress: ProjectionMaintenance.Progress) {
        let rate = progress.eventsPerSecond
        let left = rate > 0 ? Double(progress.eventsTotal - progress.eventsDone) / rate : 0
        let line = String(
            format: "\r%lld / %lld events, %.0f events/s, ETA %.0f s   ", progress.eventsDone, progress.eventsTotal,
            rate, left)
        isOpen.withLock { $0 = true }
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Where a bulk load's time went, for finding what to make faster.
    static func stages(_ stages: BulkLoad.Stages) -> String {
        String(
            format: "  waiting to read %.2f s, replaying %.2f s, waiting to load %.2f s, finishing %.2f s",
            stages.reading.seconds, stages.projecting.seconds, stages.loading.seconds, stages.finishing.seconds)
    }

    /// Ends the progress line, if one was printed since the last end.
    static func finish() {
        let wasOpen = isOpen.withLock { isOpen in
            defer { isOpen = false }
            return isOpen
        }
        if wasOpen { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private static let isOpen = Mutex(false)
}
