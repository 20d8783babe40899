import Foundation

/// Who did something and when: the part of an event's envelope the domain cares about.
public struct EventContext: Sendable, Equatable {
    public var actor: String
    public var occurredAt: Date

    public init(actor: String, occurredAt: Date) {
        self.actor = actor
        self.occurredAt = occurredAt
    }
}

/// One version as the dataset knows it: its snapshot and who made it when.
public struct VersionRecord: Sendable, Equatable {
    public var snapshot: VersionSnapshot
    public var createdAt: Date
    public var createdBy: String

    public init(snapshot: VersionSnapshot, createdAt: Date, createdBy: String) {
        self.snapshot = snapshot
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
}

/// A usage pin, as recorded.
public struct UsageRecord: Sendable, Equatable {
    public var version: Int
    public var consumer: String
    public var kind: String?
    public var properties: [String: JSONValue]
    public var recordedAt: Date
    public var recordedBy: String

    public init(
        version: Int, consumer: String, kind: String?, properties: [String: JSONValue], recordedAt: Date,
        recordedBy: String
    ) {
        self.version = version
        self.consumer = consumer
        self.kind = kind
        self.properties = properties
        self.recordedAt = recordedAt
        self.recordedBy = recordedBy
    }
}

/// A dataset folded from its events: what the decider decides against.
public struct DatasetState: Sendable, Equatable {
    public var id: UUID
    /// False until the first event: the state of a stream that does not exist.
    public var exists: Bool = false
    public var namespace: String = ""
    public var name: String = ""
    public var status: DatasetStatus = .draft
    /// What `restore` returns to.
    public var statusBeforeArchive: DatasetStatus?
    /// The newest version number, drafts included; 0 before the first.
    public var latestVersion = 0
    /// The versions this state holds, by number. Folded from its whole stream, a state holds every
    /// version; loaded for a write, it may hold only the latest and the published one, which is all
    /// most commands read (``CatalogDecider/needs(_:context:in:)`` asks for the rest when a command
    /// names another), so a dataset edited a thousand times is read as quickly as a new one.
    public var versions: [Int: VersionRecord] = [:]
    public var publishedVersion: Int?
    public var everPublished: Set<Int> = []
    public var clonedFrom: VersionRef?
    /// The number of events in the stream: the ETag.
    public var streamVersion: Int64 = 0
    public var createdAt: Date = .distantPast
    public var createdBy: String = ""
    public var updatedAt: Date = .distantPast
    public var updatedBy: String = ""
    public var retiredReason: String?

    public init(id: UUID) {
        self.id = id
    }

    /// The version the dataset presents: the published one, or the latest if none was ever published.
    public var currentVersion: Int? { publishedVersion ?? (latestVersion == 0 ? nil : latestVersion) }

    /// Whether version `number` was ever drafted, held here or not.
    public func hasDrafted(_ number: Int) -> Bool { number >= 1 && number <= latestVersion }

    /// Version `number`, if it was drafted and this state holds it.
    public func version(_ number: Int) -> VersionRecord? { versions[number] }

    /// True when every version drafted is held, as when the state is folded from its whole stream.
    public var holdsEveryVersion: Bool { versions.count == latestVersion }

    /// The versions held, oldest first.
    public var heldVersions: [VersionRecord] { versions.keys.sorted().compactMap { versions[$0] } }

    public func status(ofVersion number: Int) -> VersionStatus {
        VersionStatus(
            ofVersion: number, publishedVersion: publishedVersion, wasPublished: everPublished.contains(number))
    }

    /// The drafts newer than the published version, which are the ones `publish` may take.
    public var publishableDrafts: [Int] {
        let floor = publishedVersion ?? 0
        return floor < latestVersion ? Array((floor + 1)...latestVersion) : []
    }

    /// The state after `event`.
    public func evolve(_ event: DatasetEvent, context: EventContext) -> DatasetState {
        var next = self
        next.apply(event, context: context)
        return next
    }

    /// Moves this state past `event`, in place. (The lifecycle's part of this is
    /// ``DatasetLifecycle/apply(_:)``; a test holds the two to the same answers.)
    public mutating func apply(_ event: DatasetEvent, context: EventContext) {
        streamVersion += 1
        updatedAt = context.occurredAt
        updatedBy = context.actor
        switch event {
        case .created(let created):
            exists = true
            namespace = created.namespace
            name = created.name
            status = .draft
            clonedFrom = created.clonedFrom
            createdAt = context.occurredAt
            createdBy = context.actor
        case .versionDrafted(let drafted):
            // The number the event drafts, not a count of the drafts folded: a state loaded for a write
            // folds only the drafts it holds. (In a consistent log the two are the same.)
            latestVersion = drafted.version.version
            versions[latestVersion] = VersionRecord(
                snapshot: drafted.version, createdAt: context.occurredAt, createdBy: context.actor)
        case .published(let published):
            publishedVersion = published.version
            everPublished.insert(published.version)
            status = .published
        case .archived(let archived):
            statusBeforeArchive = archived.previousStatus
            status = .archived
        case .restored(let restored):
            status = restored.status
            statusBeforeArchive = nil
        case .retired(let retired):
            status = .retired
            retiredReason = retired.reason
        case .lineageRecorded, .versionUsed:
            break
        }
    }
}
