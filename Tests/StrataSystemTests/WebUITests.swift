import AsyncHTTPClient
import BrowserDriver
import Foundation
import StrataTestSupport
import Testing

/// The web UI in a real headless Chromium against a real `strata serve`: what the rendered pages show
/// must be what the API answers for the same link, at any `as_of`, and the write controls must follow
/// the token's role. Screenshots of the main views go to `.build/ui-screenshots/`.
@Suite("Web UI in a browser", .timeLimit(.minutes(5)))
struct WebUITests {
    @Test func theCatalogADatasetAndItsLineageShowWhatTheAPIAnswersNowAndAsOfAnEarlierPosition() async throws {
        try await withUI { ui in
            let catalog = try await SeededCatalog.make(ui)
            let browser = ui.browser

            // The list, unfiltered and through the filter form, row for row as the API lists it.
            try await browser.show(ui.baseURL, "#/")
            #expect(try await browser.strings("#datasets tbody tr", "dataset.id") == ui.listed(""))
            try await browser.run(
                """
                document.querySelector('#filters [name=namespace]').value = 'raw';
                document.querySelector('#filters').requestSubmit();
                """)
            try await browser.waitFor("document.body.dataset.view === '#/?namespace=raw' || null")
            let raw = try await ui.listed("namespace=raw")
            #expect(raw.count == 2)
            #expect(try await browser.strings("#datasets tbody tr", "dataset.id") == raw)
            try await browser.show(ui.baseURL, "#/?status=all&tag=pii")
            #expect(try await browser.strings("#datasets tbody tr", "dataset.id") == ui.listed("status=all&tag=pii"))
            try await browser.show(ui.baseURL, "#/?status=retired")
            #expect(try await browser.strings("#datasets tbody tr", "dataset.id") == [catalog.legacy])
            // The order chosen in the form is the list's, and the form shows it.
            try await browser.show(ui.baseURL, "#/")
            try await browser.run(
                """
                document.querySelector('#filters [name=sort]').value = '-updated_at';
                document.querySelector('#filters').requestSubmit();
                """)
            try await browser.waitFor("document.body.dataset.view === '#/?sort=-updated_at' || null")
            let changed = try await ui.listed("sort=-updated_at")
            let oldestFirst = try await ui.listed("")
            #expect(changed.count > 2 && changed != oldestFirst)
            #expect(try await browser.strings("#datasets tbody tr", "dataset.id") == changed)
            #expect(try await browser.strings("#filters [name=sort]", "value") == ["-updated_at"])
            // Words in the search box are a ranked search, row for row as the API ranks them, each row
            // saying what matched.
            try await browser.show(ui.baseURL, "#/?q=customer_id")
            let searched = try await ui.json("/v1/search?limit=25&q=customer_id")["results"] as? [[String: Any]]
            let found = (searched ?? []).compactMap { $0["id"] as? String }
            #expect(Set(found) == [catalog.customers, catalog.features])
            #expect(try await browser.strings("#datasets tbody tr", "dataset.id") == found)
            #expect(try await browser.strings("#datasets tbody tr:first-child .match").contains("schema: customer_id"))
            try await browser.screenshot(to: ui.screenshot("search"))
            try await browser.show(ui.baseURL, "#/")
            try await browser.screenshot(to: ui.screenshot("catalog"))

            // A dataset's page: its fields and schema, its versions, its audit trail, its usages.
            let features = try await ui.json("/v1/datasets/\(catalog.features)")
            try await browser.show(ui.baseURL, "#/datasets/\(catalog.features)")
            #expect(try await browser.strings("#dataset", "dataset.status") == [features["status"] as? String])
            let current = try #require(features["current"] as? [String: Any])
            #expect(try await browser.strings("#fields [data-field=location]") == [current["location"] as? String])
            let columns = (current["schema"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(try await browser.strings("#schema tbody tr td:first-child") == columns)
            try await browser.screenshot(to: ui.screenshot("dataset"))
            try await browser.show(ui.baseURL, "#/datasets/\(catalog.features)?tab=versions")
            #expect(try await browser.strings("#versions li", "dataset.version") == ["2", "1"])
            try await browser.show(ui.baseURL, "#/datasets/\(catalog.features)?tab=history")
            let history = try await ui.json("/v1/datasets/\(catalog.features)/history")["events"] as? [[String: Any]]
            #expect(
                try await browser.strings("#history tbody tr", "dataset.position")
                    == (history ?? []).map { "\($0["position"] as? Int ?? -1)" })
            try await browser.show(ui.baseURL, "#/datasets/\(catalog.features)?tab=usages")
            #expect(try await browser.strings("#usages tbody tr td:first-child") == ["churn-training-run-42"])

            // The lineage picture: exactly the API's nodes and edges for the same link.
            let lineageLink = "#/datasets/\(catalog.cleaned)?tab=lineage&direction=both&depth=3"
            try await browser.show(ui.baseURL, lineageLink)
            let now = try await ui.lineage(of: catalog.cleaned, "direction=both&depth=3")
            #expect(now.nodes.count == 6, "\(now.nodes)")
            #expect(try await browser.drawnLineage() == now)
            try await browser.screenshot(to: ui.screenshot("lineage"))
            #expect(
                try await browser.strings("#impact tbody tr", "dataset.id").sorted()
                    == ui.impact(of: catalog.cleaned, asOf: nil).sorted())

            // The same page as of an earlier position: every part as the API answered then, and said so.
            let earlier = "#/datasets/\(catalog.cleaned)?tab=lineage&direction=both&depth=3&as_of=\(catalog.before)"
            try await browser.show(ui.baseURL, earlier)
            let then = try await ui.lineage(of: catalog.cleaned, "direction=both&depth=3&as_of=\(catalog.before)")
            #expect(then.nodes.count < now.nodes.count)
            #expect(try await browser.drawnLineage() == then)
            #expect(try await browser.strings("#as-of-banner", "dataset.position") == ["\(catalog.before)"])
            #expect(try await browser.strings("#actions").isEmpty, "no write controls on the past")
            #expect(
                try await browser.strings("#impact tbody tr", "dataset.id").sorted()
                    == ui.impact(of: catalog.cleaned, asOf: catalog.before).sorted())
            // Every link of a rewound page to another page stays at that position: a click must not jump
            // back to now (only the page's own "now" links do). Upstream, the impact table has rows.
            try await browser.show(ui.baseURL, "#/datasets/\(catalog.orders)?tab=lineage&as_of=\(catalog.before)")
            #expect(try await browser.strings("#impact tbody a").count > 0)
            let rewoundLinks =
                try await browser.run(
                    "return [...document.querySelectorAll('#view a[href^=\"#/\"]')].map((a) => a.getAttribute('href'));"
                )
                as? [String] ?? []
            #expect(
                rewoundLinks.filter { !$0.contains("as_of") }.allSatisfy {
                    $0.hasPrefix("#/datasets/\(catalog.orders)")
                },
                "links leaving the rewound page for now: \(rewoundLinks)")
            try await browser.show(ui.baseURL, earlier)
            try await browser.screenshot(to: ui.screenshot("time-travel"))
            try await browser.show(ui.baseURL, "#/datasets/\(catalog.cleaned)?as_of=\(catalog.before)")
            let cleanedThen = try await ui.json("/v1/datasets/\(catalog.cleaned)?as_of=\(catalog.before)")
            let versionThen = try #require(cleanedThen["current"] as? [String: Any])
            #expect(try await browser.strings("#fields [data-field=location]") == [versionThen["location"] as? String])
            #expect(try await browser.strings("#dataset", "dataset.status") == [cleanedThen["status"] as? String])
            #expect(cleanedThen["status"] as? String == "draft")

            // Clicking a node goes to that node's own link.
            try await browser.show(ui.baseURL, lineageLink)
            try await browser.run(
                "document.querySelector(`#lineage g.node[data-id='\(catalog.orders)']`).parentNode"
                    + ".dispatchEvent(new MouseEvent('click', {bubbles: true}));")
            try await browser.waitFor(
                "document.body.dataset.view === "
                    + javaScriptString("#/datasets/\(catalog.orders)?tab=lineage&direction=both&depth=3") + " || null")
            #expect(try await browser.strings("#dataset", "dataset.id") == [catalog.orders])

            // A link to no view says so, rather than showing the catalog as if it were one.
            try await browser.show(ui.baseURL, "#/datasets/raw/orders")
            #expect(try await browser.strings("#no-such-page").count == 1)
            #expect(try await browser.consoleErrors() == [])

            // A filter the API refuses is shown under the form, which stays to correct it.
            try await browser.show(ui.baseURL, "#/?as_of=yesterday")
            #expect(try await browser.strings("#filters [name=as_of]", "value") == ["yesterday"])
            #expect(try await browser.strings("#filter-refused .problem", "dataset.code") == ["invalid_parameter"])
            let refusedFilter = try await browser.consoleErrors()
            #expect(refusedFilter.count == 1 && refusedFilter[0].contains("400"), "\(refusedFilter)")
        }
    }

    @Test func aReaderSeesNoWriteControlsAndAWriterSeesEachRefusalsProblem() async throws {
        try await withUI { ui in
            let catalog = try await SeededCatalog.make(ui)
            let browser = ui.browser
            let reader = try await ui.grant("analyst", role: "reader")
            let writer = try await ui.grant("steward", role: "writer")

            // Signing in by pasting a token, as a reader: everything visible, nothing to press.
            try await browser.open(ui.baseURL + "/")
            try await browser.run("sessionStorage.clear(); location.reload();")
            try await browser.waitFor("document.querySelector('#sign-in') || null")
            try await browser.run(
                """
                document.querySelector('#token').value = arguments[0];
                document.querySelector('#sign-in').requestSubmit();
                """, [reader])
            try await browser.waitFor("document.querySelector('#caller')?.dataset.role === 'reader' || null")
            let signedOut = try await browser.consoleErrors()
            #expect(
                signedOut.count == 1 && signedOut[0].contains("/v1/me") && signedOut[0].contains("401"), "\(signedOut)")
            try await browser.show(ui.baseURL, "#/datasets/\(catalog.trainingSet)")
            #expect(try await browser.strings("#dataset", "dataset.id") == [catalog.trainingSet])
            #expect(try await browser.strings("[data-action]").isEmpty)
            try await browser.screenshot(to: ui.screenshot("reader"))

            // A writer's publish of a draft without a location: refused, and the page says why.
            try await browser.run("sessionStorage.setItem('strata.token', arguments[0]); location.reload();", [writer])
            try await browser.waitFor("document.querySelector('#caller')?.dataset.role === 'writer' || null")
            try await browser.show(ui.baseURL, "#/datasets/\(catalog.trainingSet)")
            try await browser.run("document.querySelector('[data-action=publish]').click();")
            let code = try await browser.waitFor("document.querySelector('#action-result .problem')?.dataset.code")
            #expect(code as? String == "publish_check_failed")
            let problem = try await browser.strings("#action-result .problem").joined()
            #expect(problem.contains("location") && problem.contains("schema"), "\(problem)")
            try await browser.screenshot(to: ui.screenshot("refused-action"))
            let refusal = try await browser.consoleErrors()
            #expect(refusal.count == 1 && refusal[0].contains("422"), "only the refused request: \(refusal)")

            // Editing through the form: one new draft version with the changed field, sent with If-Match.
            try await browser.editThroughForm(
                """
                type('location', 's3://ml/churn/train/');
                type('change_note', 'where the training set lives');
                """)
            try await browser.waitFor("document.querySelector('#dataset')?.textContent.includes('latest v2') || null")
            let edited = try await ui.json("/v1/datasets/\(catalog.trainingSet)")
            #expect(edited["latest_version"] as? Int == 2)
            #expect((edited["current"] as? [String: Any])?["location"] as? String == "s3://ml/churn/train/")
            #expect(edited["updated_by"] as? String == "steward")

            // The form starts from the latest version, a draft newer than the published one shown, and
            // sends only what was changed: the draft's change and a description's line break stay.
            let drafted = try await ui.create(
                #"{"namespace": "ml", "name": "seeded_split", "description": "line one\nline two", "location": "s3://ml/split/", "schema": [{"name": "id", "type": "bigint"}], "properties": {"seed": 42}}"#
            )
            _ = try await ui.post("/v1/datasets/\(drafted)/publish")
            let patched = await ui.http.send(
                .PATCH, ui.baseURL + "/v1/datasets/\(drafted)", json: #"{"properties": {"seed": 43}}"#)
            #expect(patched.status == 200, "\(patched.body)")
            try await browser.show(ui.baseURL, "#/datasets/\(drafted)")
            #expect(try await browser.strings("#newer-draft").count == 1, "the unpublished draft is pointed out")
            try await browser.editThroughForm(
                """
                type('tags', 'ml, split');
                type('properties', JSON.stringify({ ...JSON.parse(field('properties').value), split: 'train' }));
                """)
            try await browser.waitFor("document.querySelector('#dataset')?.textContent.includes('latest v3') || null")
            let third = try await ui.json("/v1/datasets/\(drafted)/versions/3")
            #expect(third["description"] as? String == "line one\nline two")
            let properties = third["properties"] as? [String: Any]
            #expect(properties?["seed"] as? Int == 43 && properties?["split"] as? String == "train", "\(third)")
            #expect(third["tags"] as? [String] == ["ml", "split"])
            let history = try await ui.json("/v1/datasets/\(drafted)/history")["events"] as? [[String: Any]]
            let changed = (history?.last?["data"] as? [String: Any])?["changed_fields"] as? [String]
            #expect(Set(changed ?? []) == ["properties", "tags"], "only the fields changed in the form are sent")

            // Someone else writes after the page loaded: the action is refused, and the page says to reload.
            _ = await ui.http.send(
                .PATCH, ui.baseURL + "/v1/datasets/\(drafted)", json: #"{"description": "changed elsewhere"}"#)
            try await browser.run("document.querySelector('[data-action=archive]').click();")
            try await browser.run("document.querySelector('#archive-form').requestSubmit();")
            let conflict = try await browser.waitFor("document.querySelector('#action-result .problem')?.dataset.code")
            #expect(conflict as? String == "version_conflict")
            #expect(try await browser.strings("#action-result .problem a").first == "reload")
            #expect(try await browser.consoleErrors().allSatisfy { $0.contains("412") })

            // Retiring shows what breaks first, and only the confirmation retires.
            try await browser.show(ui.baseURL, "#/datasets/\(catalog.features)")
            try await browser.run("document.querySelector('[data-action=retire]').click();")
            try await browser.run(
                """
                document.querySelector('#retire-form [name=reason]').value = 'replaced by churn_features_v2';
                document.querySelector('#retire-form').requestSubmit();
                """)
            try await browser.waitFor("document.querySelector('#retire-confirm') || null")
            #expect(try await browser.strings("#retire-impact li").count == 1)
            #expect(try await ui.json("/v1/datasets/\(catalog.features)")["status"] as? String == "published")
            try await browser.run("document.querySelector('[data-action=confirm-retire]').click();")
            try await browser.waitFor("document.querySelector('#dataset')?.dataset.status === 'retired' || null")
            #expect(try await ui.json("/v1/datasets/\(catalog.features)")["status"] as? String == "retired")

            // The live feed shows an event appended after it opened.
            try await browser.show(ui.baseURL, "#/feed")
            try await browser.waitFor(
                "document.querySelector('#feed-status')?.textContent.startsWith('Following') || null")
            let created = try await ui.create(#"{"namespace": "ml", "name": "feed_probe"}"#)
            let position = try await ui.json("/v1/datasets/\(created)/history")["events"] as? [[String: Any]]
            let last = position?.last?["position"] as? Int ?? -1
            try await browser.waitFor("document.querySelector('#feed [data-position=\"\(last)\"]') || null")
            // Every event of a dataset names it, not only its creation.
            try await browser.waitFor(
                "document.querySelector('#feed [data-position=\"\(last)\"] a')?.textContent === 'ml/feed_probe' || null"
            )

            #expect(try await browser.consoleErrors() == [])
        }
    }
    /// A page opened while PostgreSQL restarts asks again while the server answers 503, and shows the
    /// dataset once PostgreSQL is back, not the problem.
    @Test func aPageOpenedWhilePostgreSQLRestartsShowsOnceItIsBack() async throws {
        try await withUI { ui in
            let id = try await ui.create(#"{"namespace": "ml", "name": "restart_probe"}"#)
            try await ui.browser.show(ui.baseURL, "#/")
            try await blocking { try ui.cluster.cluster.stopServer(mode: .fast) }
            let fragment = "#/datasets/\(id)"
            try await ui.browser.run("location.hash = arguments[0];", [fragment])
            // Long enough for the page to be answered 503 at least once.
            try await Task.sleep(for: .seconds(3))
            try await blocking { try ui.cluster.cluster.startServer() }
            try await ui.browser.waitFor(
                "document.body.dataset.view === '\(fragment)' || null",
                within: .seconds(40))
            #expect(try await ui.browser.strings("#dataset", "dataset.id") == [id])
            #expect(try await ui.browser.strings("#view .problem").isEmpty)
            let errors = try await ui.browser.consoleErrors()
            #expect(!errors.isEmpty && errors.allSatisfy { $0.contains("503") }, "\(errors)")
        }
    }
}

/// A server, a browser and an HTTP client for one test; everything is removed afterwards.
struct UISession: Sendable {
    let http: HTTPClient
    let browser: Browser
    let baseURL: String
    let cluster: PrivateCluster

    func json(_ path: String, token: String = ServerProcess.adminToken) async throws -> [String: Any] {
        let answer = await http.send(.GET, baseURL + path, token: token)
        guard answer.status == 200 else {
            throw BrowserError(message: "GET \(path): \(answer.status ?? 0) \(answer.body)")
        }
        return answer.json
    }

    func create(_ body: String) async throws -> String {
        let answer = await http.send(.POST, baseURL + "/v1/datasets", json: body)
        guard answer.status == 201, let id = answer.json["id"] as? String else {
            throw BrowserError(message: "create \(body): \(answer.body)")
        }
        return id
    }

    func post(_ path: String, _ body: String = "{}") async throws -> [String: Any] {
        let answer = await http.send(.POST, baseURL + path, json: body)
        guard (200..<300).contains(answer.status ?? 0) else {
            throw BrowserError(message: "POST \(path): \(answer.body)")
        }
        return answer.json
    }

    func grant(_ name: String, role: String) async throws -> String {
        let created = try await post("/v1/admin/tokens", #"{"name": "\#(name)", "role": "\#(role)"}"#)
        return try #require(created["token"] as? String)
    }

    /// The ids the API lists for `query`, in its order.
    func listed(_ query: String) async throws -> [String] {
        let datasets = try await json("/v1/datasets?limit=25&\(query)")["datasets"] as? [[String: Any]]
        return (datasets ?? []).compactMap { $0["id"] as? String }
    }

    func lineage(of id: String, _ query: String) async throws -> LineagePicture {
        let answer = try await json("/v1/datasets/\(id)/lineage?\(query)")
        let nodes = (answer["nodes"] as? [[String: Any]] ?? []).map {
            "\($0["dataset_id"] as? String ?? "") v\($0["version"] as? Int ?? 0) \($0["status"] as? String ?? "")"
        }
        let edges = (answer["edges"] as? [[String: Any]] ?? []).map { edge -> String in
            let from = edge["from"] as? [String: Any] ?? [:]
            let to = edge["to"] as? [String: Any] ?? [:]
            return "\(from["dataset_id"] as? String ?? "") v\(from["version"] as? Int ?? 0) -> "
                + "\(to["dataset_id"] as? String ?? "") v\(to["version"] as? Int ?? 0)"
        }
        return LineagePicture(nodes: Set(nodes), edges: edges.sorted())
    }

    func impact(of id: String, asOf: Int?) async throws -> [String] {
        let answer = try await json("/v1/datasets/\(id)/impact" + (asOf.map { "?as_of=\($0)" } ?? ""))
        return (answer["impact"] as? [[String: Any]] ?? []).compactMap { $0["dataset_id"] as? String }
    }

    func screenshot(_ view: String) -> String {
        UISession.screenshotFolder + "/\(view).png"
    }

    /// `.build/ui-screenshots/` of this package, where docs/web-ui.md sends people to look.
    static let screenshotFolder: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let folder = root.appendingPathComponent(".build/ui-screenshots").path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }()
}

/// Nodes (`id vN status`) and edges (`from vN -> to vM`) of a lineage answer, or of the drawn picture.
struct LineagePicture: Equatable, Sendable {
    var nodes: Set<String>
    var edges: [String]
}

extension Browser {
    /// Opens the dataset page's edit form, runs `typing` — where `type(name, value)` fills a field as a
    /// person typing would (the form sends only fields that had input) and `field(name)` is the control —
    /// and submits the form.
    func editThroughForm(_ typing: String) async throws {
        try await run("document.querySelector('[data-action=edit]').click();")
        try await waitFor("document.querySelector('#edit-form') || null")
        try await run(
            """
            const field = (name) => document.querySelector(`#edit-form [name=${name}]`);
            const type = (name, value) => {
              field(name).value = value;
              field(name).dispatchEvent(new Event('input', { bubbles: true }));
            };
            \(typing)
            document.querySelector('#edit-form').requestSubmit();
            """)
    }

    /// The lineage picture as the page drew it.
    func drawnLineage() async throws -> LineagePicture {
        let nodes =
            try await run(
                """
                return [...document.querySelectorAll('#lineage g.node')]
                  .map((g) => `${g.dataset.id} v${g.dataset.version || 0} ${g.dataset.status}`);
                """) as? [String] ?? []
        let edges =
            try await run(
                """
                return [...document.querySelectorAll('#lineage g.edge')].map((g) =>
                  `${g.dataset.from} v${g.dataset.fromVersion || 0} -> ${g.dataset.to} v${g.dataset.toVersion || 0}`);
                """) as? [String] ?? []
        return LineagePicture(nodes: Set(nodes), edges: edges.sorted())
    }
}

/// A small catalog with lineage over three namespaces, a retired dataset, a usage, and a position
/// (`before`) taken before its later edits and datasets, for time travel.
struct SeededCatalog: Sendable {
    var orders: String
    var customers: String
    var cleaned: String
    var revenue: String
    var features: String
    var trainingSet: String
    var legacy: String
    var before: Int

    static func make(_ ui: UISession) async throws -> SeededCatalog {
        let schema =
            #"[{"name": "order_id", "type": "string", "nullable": false}, {"name": "amount", "type": "decimal"}]"#
        let orders = try await ui.create(
            #"{"namespace": "raw", "name": "orders", "location": "s3://raw/orders/", "format": "parquet", "#
                + #""schema": \#(schema), "tags": ["pii", "sales"], "owner": "team-ingest"}"#)
        let customers = try await ui.create(
            #"{"namespace": "raw", "name": "customers", "location": "s3://raw/customers/", "format": "csv", "#
                + #""schema": [{"name": "customer_id", "type": "string"}], "tags": ["pii"]}"#)
        for id in [orders, customers] { _ = try await ui.post("/v1/datasets/\(id)/publish") }
        let cleaned = try await ui.create(
            #"{"namespace": "analytics", "name": "orders_cleaned", "location": "s3://analytics/orders_v1/", "#
                + #""format": "delta", "schema": \#(schema), "parents": [{"dataset_id": "\#(orders)", "version": 1}, "#
                + #"{"dataset_id": "\#(customers)", "version": 1}]}"#)
        let legacy = try await ui.create(#"{"namespace": "raw", "name": "legacy_orders"}"#)
        _ = try await ui.post("/v1/datasets/\(legacy)/retire", #"{"reason": "moved to raw/orders"}"#)
        let before = try await ui.json("/v1/datasets/\(cleaned)/history")["events"] as? [[String: Any]]
        let position = try #require(before?.last?["position"] as? Int)

        let edit = await ui.http.send(
            .PATCH, ui.baseURL + "/v1/datasets/\(cleaned)",
            json: #"{"location": "s3://analytics/orders_v2/", "change_note": "moved"}"#)
        guard edit.status == 200 else { throw BrowserError(message: "edit: \(edit.body)") }
        _ = try await ui.post("/v1/datasets/\(cleaned)/publish")
        let revenue = try await ui.create(
            #"{"namespace": "analytics", "name": "daily_revenue", "parents": [{"dataset_id": "\#(cleaned)", "version": 2}]}"#
        )
        let features = try await ui.create(
            #"{"namespace": "ml", "name": "churn_features", "location": "s3://ml/churn/", "format": "parquet", "#
                + #""schema": [{"name": "customer_id", "type": "string"}], "parents": [{"dataset_id": "\#(cleaned)", "version": 2}]}"#
        )
        _ = try await ui.post("/v1/datasets/\(features)/publish")
        let featuresEdit = await ui.http.send(
            .PATCH, ui.baseURL + "/v1/datasets/\(features)", json: #"{"description": "one row per customer"}"#)
        guard featuresEdit.status == 200 else { throw BrowserError(message: "edit: \(featuresEdit.body)") }
        _ = try await ui.post(
            "/v1/datasets/\(features)/versions/1/usages", #"{"consumer": "churn-training-run-42", "kind": "training"}"#)
        let trainingSet = try await ui.create(
            #"{"namespace": "ml", "name": "churn_training_set", "parents": [{"dataset_id": "\#(features)", "version": 1}]}"#
        )
        return SeededCatalog(
            orders: orders, customers: customers, cleaned: cleaned, revenue: revenue, features: features,
            trainingSet: trainingSet, legacy: legacy, before: position)
    }
}

/// Runs `body` against a fresh cluster, server and browser, and removes them all afterwards.
func withUI(_ body: @Sendable (UISession) async throws -> Void) async throws {
    let (cluster, server) = try await PrivateCluster.startServed()
    defer {
        server.stop()
        cluster.remove()
    }
    try await withHTTPClient { http in
        let browser = try await Browser.start(http: http, logFolder: cluster.folder)
        do {
            // Signed in as the server's admin, as if the token had been pasted; the first load's 401
            // (signed out) is dropped from the console log the tests check.
            try await browser.open(server.baseURL + "/")
            try await browser.run("sessionStorage.setItem('strata.token', arguments[0]);", [ServerProcess.adminToken])
            _ = try await browser.consoleErrors()
            try await body(UISession(http: http, browser: browser, baseURL: server.baseURL, cluster: cluster))
            await browser.close()
        } catch {
            await browser.close()
            throw error
        }
    }
}
