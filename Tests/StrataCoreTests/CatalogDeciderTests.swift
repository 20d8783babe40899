import Foundation
import StrataCore
import Testing

/// The catalog's rules across streams, given a view of the catalog and a command, then the events per
/// stream (or the refusal) — no database.
@Suite("The catalog's rules")
struct CatalogDeciderTests {
    static let fields = VersionFields(
        owner: "team-data", location: "s3://lake/orders/", format: .parquet,
        schema: [Column(name: "id", type: "bigint")])
    static let at = Date(timeIntervalSince1970: 1_800_000_000)

    /// A view holding published datasets `names` in namespace `ns`, each with one version.
    static func view(_ datasets: [(UUID, String, String)], retired: Set<UUID> = []) throws -> CatalogView {
        var view = CatalogView()
        for (id, namespace, name) in datasets {
            var state = DatasetState(id: id)
            let context = EventContext(actor: "seed", occurredAt: at)
            for event in try DatasetDecider.decide(
                .create(namespace: namespace, name: name, fields: fields, clonedFrom: nil), state: state)
            {
                state.apply(event, context: context)
            }
            state.apply(
                try DatasetDecider.decide(.publish(version: nil, changeNote: nil), state: state)[0], context: context)
            if retired.contains(id) {
                state.apply(try DatasetDecider.decide(.retire(reason: "old"), state: state)[0], context: context)
            }
            view.load(dataset: state)
            view.load(name: .init(namespace, name), holder: retired.contains(id) ? nil : id)
        }
        return view
    }

    static func decide(
        _ command: CatalogCommand, in view: inout CatalogView, scope: NamespaceScope = .all, expected: Int64? = nil
    ) throws -> CatalogDecider.Decision {
        try CatalogDecider.decide(
            command,
            context: CommandContext(actor: "alice", occurredAt: at, scope: scope, expectedStreamVersion: expected),
            in: &view)
    }

    static func datasetEvents(_ decision: CatalogDecider.Decision, on stream: UUID) -> [DatasetEvent] {
        decision.events.compactMap { $0.stream == stream ? ($0.event.dataset) : nil }
    }

    // MARK: names and scopes

    @Test func aNameHeldByADatasetThatIsNotRetiredCannotBeTakenAgainButARetiredOnesCan() throws {
        let (live, gone) = (UUID(), UUID())
        var view = try Self.view([(live, "ns", "orders"), (gone, "ns", "old")], retired: [gone])
        view.loadAbsent(dataset: UUID())
        #expect(throws: DomainError.nameTaken(namespace: "ns", name: "orders")) {
            try Self.decide(
                .dataset(UUID(), .create(namespace: "ns", name: "orders", fields: .init(), clonedFrom: nil)), in: &view)
        }
        let reused = UUID()
        let decision = try Self.decide(
            .dataset(reused, .create(namespace: "ns", name: "old", fields: .init(), clonedFrom: nil)), in: &view)
        #expect(decision.events.count == 2)
        #expect(view.holder(of: .init("ns", "old")) == reused, "the view sees the create at once")
        #expect(throws: DomainError.nameTaken(namespace: "ns", name: "old")) {
            try Self.decide(
                .dataset(UUID(), .create(namespace: "ns", name: "old", fields: .init(), clonedFrom: nil)), in: &view)
        }
    }

    @Test func aScopedCallerFindsNothingOutsideItsNamespacesAndCreatesNothingThere() throws {
        let other = UUID()
        var view = try Self.view([(other, "alpha", "orders")])
        let beta = NamespaceScope.only(["beta"])
        #expect(throws: DomainError.datasetNotFound) {
            try Self.decide(.dataset(other, .archive(reason: nil)), in: &view, scope: beta)
        }
        #expect(throws: AccessError.namespaceOutOfScope("alpha")) {
            try Self.decide(
                .dataset(UUID(), .create(namespace: "alpha", name: "x", fields: .init(), clonedFrom: nil)), in: &view,
                scope: beta)
        }
        #expect(throws: DomainError.datasetNotFound) {
            try Self.decide(
                .clone(source: other, newID: UUID(), namespace: "beta", name: "mine", changeNote: nil), in: &view,
                scope: beta)
        }
    }

    /// `café` with a precomposed é and `café` with e and a combining accent are equal Swift strings but two
    /// namespaces of the catalog, which compares bytes: a token scoped to one does not reach the other.
    @Test func aScopeMatchesANamespaceByItsBytesNotByCanonicalEquivalence() throws {
        let composed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        #expect(composed == decomposed, "Swift compares strings by canonical equivalence")
        let other = UUID()
        var view = try Self.view([(other, decomposed, "secret")])
        let scope = NamespaceScope([composed])
        #expect(scope.includes(composed) && !scope.includes(decomposed))
        #expect(throws: DomainError.datasetNotFound) {
            try Self.decide(
                .dataset(other, .edit(patch: .object(["description": .string("mine")]))), in: &view, scope: scope)
        }
        #expect(throws: AccessError.namespaceOutOfScope(decomposed)) {
            try Self.decide(
                .dataset(UUID(), .create(namespace: decomposed, name: "x", fields: .init(), clonedFrom: nil)),
                in: &view, scope: scope)
        }
    }

    /// The catalog's unique index tells `café` and `café` (a combining accent) apart, so the decider does:
    /// one taken leaves the other free, in the same batch as across batches.
    @Test func aNameIsTakenByItsBytesNotByCanonicalEquivalence() throws {
        let (composed, decomposed) = ("caf\u{E9}", "cafe\u{301}")
        var view = try Self.view([(UUID(), "ns", composed)])
        #expect(view.holder(of: .init("ns", decomposed)) == nil)
        let fresh = UUID()
        _ = try Self.decide(
            .dataset(fresh, .create(namespace: "ns", name: decomposed, fields: .init(), clonedFrom: nil)), in: &view)
        #expect(view.holder(of: .init("ns", decomposed)) == fresh)
        #expect(view.holder(of: .init("ns", composed)) != fresh)
        let granted = try TokenDecider.decide(
            .create(name: "t", role: .reader, namespaces: [composed, decomposed, composed], secretSHA256: ""),
            state: TokenState(id: UUID()))
        guard case .created(let created) = granted.first else { throw TokenTestFailure() }
        #expect(created.namespaces.count == 2, "a token's namespaces are told apart by their bytes")
    }

    @Test func aStaleExpectationIsAVersionConflictAndChangesNothing() throws {
        let id = UUID()
        var view = try Self.view([(id, "ns", "orders")])
        let before = view.dataset(id)
        #expect(throws: CatalogError.versionConflict(expected: 1, actual: 3)) {
            try Self.decide(.dataset(id, .archive(reason: nil)), in: &view, expected: 1)
        }
        #expect(view.dataset(id) == before)
        _ = try Self.decide(.dataset(id, .archive(reason: nil)), in: &view, expected: 3)
        #expect(view.dataset(id).status == .archived)
    }

    /// `If-Match` on a dataset that does not exist (a wrong id, a stale bookmark) is not found, not a
    /// conflict with a version it never had.
    @Test func anExpectationOfADatasetThatDoesNotExistIsNotFound() throws {
        let missing = UUID()
        var view = CatalogView()
        view.loadAbsent(dataset: missing)
        #expect(throws: DomainError.datasetNotFound) {
            try Self.decide(.dataset(missing, .archive(reason: nil)), in: &view, expected: 3)
        }
    }

    // MARK: clone

    @Test func aCloneCopiesTheSourcesCurrentVersionWithTheSourceAsParentInItsNamespace() throws {
        let (source, copy) = (UUID(), UUID())
        var view = try Self.view([(source, "ns", "orders")])
        view.loadAbsent(dataset: copy)
        view.load(name: .init("ns", "orders-copy"), holder: nil)
        let decision = try Self.decide(
            .clone(source: source, newID: copy, namespace: nil, name: "orders-copy", changeNote: "a copy"), in: &view)
        #expect(decision.subject == copy)
        let events = Self.datasetEvents(decision, on: copy)
        guard case .created(let created) = events.first, case .versionDrafted(let drafted) = events.last else {
            Issue.record("expected a create and a draft, got \(events)")
            return
        }
        #expect(created.namespace == "ns" && created.clonedFrom == VersionRef(datasetID: source, version: 1))
        #expect(drafted.version.fields.location == Self.fields.location)
        #expect(drafted.version.fields.parents == [VersionRef(datasetID: source, version: 1)])
        #expect(drafted.version.fields.changeNote == "a copy")
        #expect(Self.datasetEvents(decision, on: source).isEmpty, "the source's stream is not touched")
    }

    /// `If-Match` on a clone names the source's version: a stale one copies nothing.
    @Test func aCloneExpectingAnotherVersionOfItsSourceIsAVersionConflict() throws {
        let (source, copy) = (UUID(), UUID())
        var view = try Self.view([(source, "ns", "orders")])
        view.loadAbsent(dataset: copy)
        view.load(name: .init("ns", "orders-copy"), holder: nil)
        let clone = CatalogCommand.clone(
            source: source, newID: copy, namespace: nil, name: "orders-copy", changeNote: nil)
        #expect(throws: CatalogError.versionConflict(expected: 2, actual: 3)) {
            try Self.decide(clone, in: &view, expected: 2)
        }
        #expect(!view.dataset(copy).exists)
        #expect(try Self.decide(clone, in: &view, expected: 3).subject == copy)
    }

    @Test func aRetiredDatasetCannotBeCloned() throws {
        let source = UUID()
        var view = try Self.view([(source, "ns", "orders")], retired: [source])
        #expect(throws: DomainError.invalidTransition(action: "clone", status: .retired)) {
            try Self.decide(
                .clone(source: source, newID: UUID(), namespace: nil, name: "c", changeNote: nil), in: &view)
        }
    }

    @Test func cloningNeedsTheSourceBeforeItCanAskForTheName() throws {
        let (source, copy) = (UUID(), UUID())
        let command = CatalogCommand.clone(source: source, newID: copy, namespace: nil, name: "c", changeNote: nil)
        let context = CommandContext(actor: "a", occurredAt: Self.at)
        let first = CatalogDecider.needs(command, context: context, in: CatalogView())
        #expect(first.datasets == [source] && first.names.isEmpty, "the copy's id is fresh: nothing to load")
        let loaded = try Self.view([(source, "ns", "orders")])
        let second = CatalogDecider.needs(command, context: context, in: loaded)
        #expect(second.names == [.init("ns", "c")])
    }

    /// The parents a new draft carries over were checked when they were named: an edit needs none of them
    /// loaded, and one retired since, or outside the editor's namespaces, does not block the edit. A parent
    /// the patch names is checked.
    @Test func anEditChecksTheParentsItNamesNotThoseItCarriesOver() throws {
        let (parent, child, retiredParent) = (UUID(), UUID(), UUID())
        var view = try Self.view([(parent, "raw", "orders"), (retiredParent, "raw", "old")], retired: [retiredParent])
        let create = CatalogCommand.dataset(
            child,
            .create(
                namespace: "analytics", name: "cleaned",
                fields: VersionFields(parents: [VersionRef(datasetID: parent, version: 1)]), clonedFrom: nil))
        _ = try Self.decide(create, in: &view)
        let edit = CatalogCommand.dataset(child, .edit(patch: .object(["description": .string("deduplicated")])))
        let context = CommandContext(actor: "a", occurredAt: Self.at)
        var childOnly = CatalogView()
        childOnly.load(dataset: view.dataset(child))
        #expect(CatalogDecider.needs(edit, context: context, in: childOnly).isEmpty)

        // Decided on the child alone, by a caller who may not see raw: the parent is carried over.
        let decision = try Self.decide(edit, in: &childOnly, scope: NamespaceScope(["analytics"]))
        let drafted = Self.datasetEvents(decision, on: child).compactMap { event -> [VersionRef]? in
            if case .versionDrafted(let drafted) = event { return drafted.version.fields.parents }
            return nil
        }
        #expect(drafted == [[VersionRef(datasetID: parent, version: 1)]])

        let naming = CatalogCommand.dataset(
            child,
            .edit(
                patch: .object([
                    "parents": .array([
                        .object(["dataset_id": .string(retiredParent.uuidString), "version": .number(1)])
                    ])
                ])))
        #expect(CatalogDecider.needs(naming, context: context, in: childOnly).datasets == [retiredParent])
        #expect(throws: DomainError.invalidLineageInput(index: 0, datasetID: retiredParent, reason: .retired)) {
            try Self.decide(naming, in: &view)
        }
    }

    /// A state loaded for a write holds its latest and its published version only: what most commands
    /// read. A command naming another version asks for the whole history first, and decides as it would
    /// on the whole state.
    @Test func aStateHoldingOnlyItsLatestAndPublishedVersionsIsAskedForTheRestWhenACommandNamesThem() throws {
        let id = UUID()
        var view = try Self.view([(id, "warehouse", "orders")])
        for note in ["a", "b", "c"] {
            _ = try Self.decide(.dataset(id, .edit(patch: .object(["description": .string(note)]))), in: &view)
        }
        _ = try Self.decide(.dataset(id, .publish(version: 2, changeNote: nil)), in: &view)
        let whole = view.dataset(id)
        var held = whole
        held.versions = whole.versions.filter { [2, 4].contains($0.key) }
        #expect(whole.holdsEveryVersion && !held.holdsEveryVersion)
        var compact = CatalogView()
        compact.load(dataset: held)
        compact.load(name: .init("warehouse", "orders"), holder: id)
        let context = CommandContext(actor: "a", occurredAt: Self.at)
        func needs(_ command: CatalogCommand) -> CatalogDecider.Needs {
            CatalogDecider.needs(command, context: context, in: compact)
        }

        #expect(needs(.dataset(id, .publish(version: 3, changeNote: nil))).histories == [id])
        #expect(needs(.dataset(id, .publish(version: 4, changeNote: nil))).isEmpty)
        #expect(needs(.dataset(id, .publish(version: nil, changeNote: nil))).isEmpty)
        #expect(needs(.dataset(id, .publish(version: 9, changeNote: nil))).isEmpty, "refused: never drafted")
        let readingV3 = OpenLineageIngest(
            inputs: [Self.dataset("orders", schema: nil, version: "v3")], outputs: [], job: nil, runID: nil,
            recordsLineage: true, registersDatasets: true)
        #expect(needs(.openLineage(readingV3, newIDs: [UUID()])).histories == [id])

        for command: CatalogCommand in [
            .dataset(id, .edit(patch: .object(["description": .string("d")]))),
            .dataset(id, .publish(version: nil, changeNote: "next")),
            .dataset(id, .recordUsage(version: 1, consumer: "model", kind: nil, properties: [:])),
            .clone(source: id, newID: UUID(), namespace: "warehouse", name: "copy", changeNote: nil),
        ] {
            var (wholeView, compactView) = (view, compact)
            for fresh in [command].compactMap({ if case .clone(_, let newID, _, _, _) = $0 { newID } else { nil } }) {
                wholeView.loadAbsent(dataset: fresh)
                compactView.loadAbsent(dataset: fresh)
                wholeView.load(name: .init("warehouse", "copy"), holder: nil)
                compactView.load(name: .init("warehouse", "copy"), holder: nil)
            }
            #expect(
                try Self.decide(command, in: &compactView) == Self.decide(command, in: &wholeView), "\(command)")
        }
    }

    // MARK: lineage

    @Test func lineageGoesFromEachInputsCurrentVersionToEachOutputAllOrNone() throws {
        let (input, output, retired) = (UUID(), UUID(), UUID())
        var view = try Self.view([(input, "ns", "a"), (output, "ns", "b"), (retired, "ns", "c")], retired: [retired])
        let decision = try Self.decide(
            .lineage(
                job: .init(namespace: "airflow", name: "etl"), runID: "r1",
                inputs: [.init(datasetID: input, version: nil)],
                outputs: [.init(datasetID: output, version: nil)]),
            in: &view)
        guard case .lineageRecorded(let recorded) = Self.datasetEvents(decision, on: output).first else {
            Issue.record("expected a LineageRecorded on the output")
            return
        }
        #expect(recorded.inputs == [VersionRef(datasetID: input, version: 1)])
        #expect(recorded.output == VersionRef(datasetID: output, version: 1))

        let before = view.dataset(output)
        #expect(throws: DomainError.invalidLineageInput(index: 1, datasetID: retired, reason: .retired)) {
            try Self.decide(
                .lineage(
                    job: nil, runID: nil,
                    inputs: [.init(datasetID: input, version: nil), .init(datasetID: retired, version: nil)],
                    outputs: [.init(datasetID: output, version: nil)]),
                in: &view)
        }
        #expect(view.dataset(output) == before, "a refused record appends nothing")
    }

    // MARK: OpenLineage

    static func dataset(_ name: String, schema: [Column]?, version: String? = nil, dropped: Bool = false)
        -> OpenLineageIngest.Dataset
    {
        .init(
            namespace: "warehouse", name: name, location: "postgres://db/\(name)", schema: schema, facets: [:],
            datasetVersion: version, dropped: dropped)
    }

    @Test func anOpenLineageRunRegistersNewDatasetsPublishesThoseWithASchemaAndRecordsLineage() throws {
        let schema = [Column(name: "id", type: "int")]
        let ingest = OpenLineageIngest(
            inputs: [Self.dataset("raw", schema: schema, version: "v7")],
            outputs: [Self.dataset("clean", schema: schema)],
            job: .init(namespace: "dbt", name: "clean"), runID: "run", recordsLineage: true, registersDatasets: true)
        let ids = [UUID(), UUID()]
        var view = CatalogView()
        for id in ids { view.loadAbsent(dataset: id) }
        view.load(name: .init("warehouse", "raw"), holder: nil)
        view.load(name: .init("warehouse", "clean"), holder: nil)
        let decision = try Self.decide(.openLineage(ingest, newIDs: ids), in: &view)
        #expect(view.dataset(ids[0]).status == .published && view.dataset(ids[1]).status == .published)
        #expect(view.holder(of: .init("warehouse", "raw")) == ids[0])
        guard case .lineageRecorded(let recorded) = Self.datasetEvents(decision, on: ids[1]).last else {
            Issue.record("expected lineage into the output")
            return
        }
        #expect(recorded.inputs == [VersionRef(datasetID: ids[0], version: 1)])

        // The same run again: nothing registered anew, the same schema adds no version, lineage again.
        let again = try Self.decide(.openLineage(ingest, newIDs: [UUID(), UUID()]), in: &view)
        #expect(again.events.map(\.stream) == [ids[1]])
        // A changed output schema: a new published version.
        let changed = OpenLineageIngest(
            inputs: [], outputs: [Self.dataset("clean", schema: schema + [Column(name: "v", type: "text")])], job: nil,
            runID: nil, recordsLineage: true, registersDatasets: true)
        _ = try Self.decide(.openLineage(changed, newIDs: [UUID()]), in: &view)
        #expect(view.dataset(ids[1]).latestVersion == 2 && view.dataset(ids[1]).publishedVersion == 2)
        // DROP retires.
        let dropped = OpenLineageIngest(
            inputs: [], outputs: [Self.dataset("clean", schema: nil, dropped: true)], job: nil, runID: nil,
            recordsLineage: true, registersDatasets: true)
        _ = try Self.decide(.openLineage(dropped, newIDs: [UUID()]), in: &view)
        #expect(view.dataset(ids[1]).status == .retired)
        #expect(view.holder(of: .init("warehouse", "clean")) == nil)
    }

    @Test func openLineageNamingAnotherNamespaceIsRefusedForAScopedCaller() throws {
        var view = CatalogView()
        view.load(name: .init("warehouse", "raw"), holder: nil)
        let ingest = OpenLineageIngest(
            inputs: [], outputs: [Self.dataset("raw", schema: nil)], job: nil, runID: nil, recordsLineage: true,
            registersDatasets: true)
        #expect(throws: AccessError.namespaceOutOfScope("warehouse")) {
            try Self.decide(.openLineage(ingest, newIDs: [UUID()]), in: &view, scope: .only(["beta"]))
        }
    }

    @Test func aRunRefusedAfterItRegisteredADatasetLeavesTheViewAsItWas() throws {
        // The input is registered (created, its name taken) before the output in another namespace is
        // refused: the view must forget both, or the next command of the batch would see a dataset
        // that was never appended.
        let schema = [Column(name: "id", type: "int")]
        let (registered, refused) = (UUID(), UUID())
        let ingest = OpenLineageIngest(
            inputs: [Self.dataset("raw", schema: schema)],
            outputs: [
                .init(
                    namespace: "finance", name: "ledger", location: "postgres://db/ledger", schema: schema, facets: [:],
                    datasetVersion: nil, dropped: false)
            ],
            job: nil, runID: nil, recordsLineage: true, registersDatasets: true)
        var view = CatalogView()
        for id in [registered, refused] { view.loadAbsent(dataset: id) }
        view.load(name: .init("warehouse", "raw"), holder: nil)
        view.load(name: .init("finance", "ledger"), holder: nil)

        #expect(throws: AccessError.namespaceOutOfScope("finance")) {
            try Self.decide(
                .openLineage(ingest, newIDs: [registered, refused]), in: &view, scope: .only(["warehouse"]))
        }
        #expect(!view.dataset(registered).exists)
        #expect(view.knows(name: .init("warehouse", "raw")) && view.holder(of: .init("warehouse", "raw")) == nil)

        // The same run within scope registers both.
        _ = try Self.decide(.openLineage(ingest, newIDs: [registered, refused]), in: &view)
        #expect(view.holder(of: .init("warehouse", "raw")) == registered)
        #expect(view.holder(of: .init("finance", "ledger")) == refused)
    }

    // MARK: tokens

    @Test func aTokenNameIsHeldByOneTokenAtATimeAndOnlyAValidTokenIsRevoked() throws {
        var view = CatalogView()
        let id = UUID()
        view.load(tokenName: "ci", stream: nil)
        view.load(token: TokenState(id: id))
        let secret = String(repeating: "a", count: 64)
        _ = try Self.decide(
            .createToken(id, name: "ci", role: .writer, namespaces: ["b", "a", "b"], secretSHA256: secret), in: &view)
        #expect(view.token(id).namespaces == ["a", "b"])
        #expect(throws: AccessError.tokenNameTaken("ci")) {
            try Self.decide(
                .createToken(UUID(), name: "ci", role: .reader, namespaces: [], secretSHA256: secret), in: &view)
        }
        _ = try Self.decide(.revokeToken(name: "ci"), in: &view)
        #expect(view.token(id).isRevoked)
        #expect(throws: AccessError.tokenNotFound("ci")) { try Self.decide(.revokeToken(name: "ci"), in: &view) }
    }
}

extension LogEvent {
    fileprivate var dataset: DatasetEvent? {
        if case .dataset(let event) = self { return event }
        return nil
    }
}

private struct TokenTestFailure: Error {}
