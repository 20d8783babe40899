import Foundation
import Hummingbird
import StrataCore
import StrataStore

/// `/v1/admin/projections`: what each projection has applied, and rebuilding them while serving.
struct AdminRoutes {
    let maintenance: ProjectionMaintenance

    func register(on router: Router<StrataRequestContext>) {
        router.get("/v1/admin/projections", use: list)
        router.post("/v1/admin/projections/rebuild", use: rebuild)
    }

    @Sendable func list(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let statuses = try await maintenance.status()
        let items: [JSONValue] = statuses.map { status in
            .object([
                "name": .string(status.name), "definition_hash": .string(status.definitionHash),
                "definition_current": .bool(status.definitionHash == status.currentDefinitionHash),
                "applied_position": .number(Double(status.appliedPosition)), "rows": .number(Double(status.rows)),
                "last_rebuild": status.rebuiltAt.map { .string(Timestamp.string(from: $0)) } ?? .null,
            ])
        }
        return jsonResponse(.ok, body: CanonicalJSON.string(JSONValue.object(["projections": .array(items)])))
    }

    /// Rebuilds all projections, or `{"names": [...]}`, and answers when they are swapped in.
    @Sendable func rebuild(_ request: Request, context: StrataRequestContext) async throws -> Response {
        let known = maintenance.catalog.definitions.map(\.name)
        let body = try await RequestBody.read(
            request, context: context,
            rules: BodyRules(
                fields: ["names": .array(of: .oneOf(known, nullable: false), maxItems: known.count, uniqueItems: true)]
            ),
            allowEmpty: true
        )
        let names = body.object["names"]?.arrayValue?.compactMap(\.stringValue)
        let report = try await maintenance.rebuild(names)
        let answer = JSONValue.object([
            "projections": .array(report.projections.map(JSONValue.string)),
            "position": .number(Double(report.position)),
            "seconds": .number(Double(report.elapsed.components.seconds)),
        ])
        // It appends nothing: its position is the log's, up to which the fresh projections were built.
        return jsonResponse(.ok, body: CanonicalJSON.string(answer), position: report.position)
    }
}
