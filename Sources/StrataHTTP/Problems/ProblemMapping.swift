import Foundation
import Hummingbird
import Logging
import StrataCore
import StrataStore

/// Every refusal's status and code, in one table.
extension Problem {
    init(_ error: DomainError) {
        switch error {
        case .datasetNotFound:
            self.init(status: .notFound, code: "not_found", detail: "no such dataset")
        case .versionNotFound(let version):
            self.init(status: .notFound, code: "not_found", detail: "the dataset has no version \(version)")
        case .invalidTransition(let action, let status, let detail):
            self.init(
                status: .conflict, code: "invalid_transition",
                detail: "cannot \(action) \(status == .archived ? "an" : "a") \(status.rawValue) dataset"
                    + (detail.map { ": \($0)" } ?? "")
            )
        case .publishCheckFailed(let version, let missing):
            self.init(
                status: .unprocessableContent, code: "publish_check_failed",
                detail: "version \(version) cannot be published: it lacks \(missing.joined(separator: " and "))",
                errors: missing.map { field in
                    FieldError(
                        path: "/\(field)",
                        message: field == "schema" ? "at least one column is required" : "\(field) is required"
                    )
                }
            )
        case .nameTaken(let namespace, let name):
            self.init(
                status: .conflict, code: "name_taken",
                detail: "a dataset named '\(name)' already exists in namespace '\(namespace)'"
            )
        case .alreadyExists:
            self.init(status: .conflict, code: "already_exists", detail: "a dataset with this id already exists")
        case .invalidPatch(let reason):
            self.init(status: .unprocessableContent, code: "validation_failed", detail: "invalid patch: \(reason)")
        case .selfLoop:
            self.init(
                status: .unprocessableContent, code: "validation_failed",
                detail: "a dataset cannot be its own lineage input or parent")
        case .tooManyLineageEdges(let inputs, let outputs):
            let (edges, most) = (inputs * outputs, CatalogDecider.mostLineageEdges)
            let message: String = """
                joins \(inputs) inputs to \(outputs) outputs: \(edges) lineage edges, where one write may record at \
                most \(most); send the lineage in several writes
                """
            self.init(
                status: .unprocessableContent, code: "validation_failed", detail: "the lineage \(message)",
                errors: [.init(path: "/outputs", message: message)])
        case .invalidLineageInput(let index, let datasetID, let reason):
            switch reason {
            case .datasetNotFound:
                self.init(
                    status: .notFound, code: "not_found",
                    detail: "lineage input \(index): no dataset \(datasetID.lowercased)")
            case .versionNotFound(let version):
                self.init(
                    status: .notFound, code: "not_found",
                    detail: "lineage input \(index): dataset \(datasetID.lowercased) has no version \(version)")
            case .retired:
                self.init(
                    status: .conflict, code: "invalid_transition",
                    detail: "lineage input \(index): dataset \(datasetID.lowercased) is retired and can feed nothing")
            }
        }
    }

    init(_ error: AccessError) {
        switch error {
        case .tokenNameTaken(let name):
            self.init(
                status: .conflict, code: "name_taken", detail: "a token named '\(name)' exists and is not revoked")
        case .tokenNotFound(let name):
            self.init(status: .notFound, code: "not_found", detail: "no token named '\(name)' is valid")
        case .namespaceOutOfScope(let namespace):
            self.init(
                status: .forbidden, code: "forbidden",
                detail: "the token may not act in namespace '\(namespace)'")
        case .reservedTokenName(let name):
            let message = "is the name of an actor the catalog records as itself; choose another"
            self.init(
                status: .unprocessableContent, code: "validation_failed", detail: "'\(name)' \(message)",
                errors: [.init(path: "/name", message: message)])
        }
    }

    init(_ error: CatalogError) {
        switch error {
        case .versionConflict(let expected, let actual):
            self.init(
                status: .preconditionFailed, code: "version_conflict",
                detail: "If-Match names version \(expected), but the dataset is at version \(actual)"
            )
        case .idempotencyKeyReused:
            self.init(
                status: .unprocessableContent, code: "idempotency_key_reused",
                detail: "this Idempotency-Key was already used for a different request"
            )
        }
    }

    init(_ error: ReadError) {
        switch error {
        case .asOfBeyondHead(let requested, let head):
            self.init(
                status: .badRequest, code: "invalid_parameter",
                detail: "as_of \(requested) is beyond the end of the log (\(head)); its answer could still change",
                errors: [.init(path: "as_of", message: "must not exceed \(head)")]
            )
        case .minimumBeyondHead(let requested, let head):
            self.init(
                status: .badRequest, code: "invalid_parameter",
                detail:
                    "Strata-Min-Position \(requested) is beyond the end of the log (\(head)): no write answered it",
                errors: [.init(path: "Strata-Min-Position", message: "must not exceed \(head)")]
            )
        }
    }

    /// PostgreSQL could not be used: the request changed nothing (or, for a lost COMMIT, retrying it with
    /// its `Idempotency-Key` is safe), so the client is told to come back shortly.
    init(_ outage: DatabaseUnavailable) {
        var headers = HTTPFields()
        headers[.retryAfter] = "\(Self.retryAfterSeconds)"
        self.init(
            status: .serviceUnavailable, code: "database_unavailable", detail: outage.description, headers: headers)
    }

    static let retryAfterSeconds = 2

    /// Errors Hummingbird raises itself (unknown route, wrong method, body too large, …).
    init(_ error: any HTTPResponseError) {
        switch error.status {
        case .notFound:
            self.init(status: .notFound, code: "not_found", detail: "no such resource")
        case .methodNotAllowed:
            self.init(status: .methodNotAllowed, code: "method_not_allowed", detail: "method not allowed here")
        case .contentTooLarge:
            self.init(
                status: .contentTooLarge, code: "payload_too_large", detail: "request bodies are limited to 1 MiB")
        case let status where status.code < 500:
            self.init(status: status, code: "bad_request", detail: status.reasonPhrase)
        default:
            self.init(status: .internalServerError, code: "internal_error", detail: "the server failed; see its log")
        }
    }
}

/// Turns every error a route throws into a problem document, so no client sees anything else.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = StrataRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let refusal as AnsweredRefusal {
            return storedResponse(refusal.response)
        } catch {
            return try Self.problem(for: error, logger: context.identifiedLogger).response(
                from: request, context: context)
        }
    }

    /// The problem document for any error; anything unforeseen is logged and answered as a 500.
    static func problem(for error: any Error, logger: Logger) -> Problem {
        switch error {
        case let problem as Problem: return problem
        case let error as DomainError: return Problem(error)
        case let error as CatalogError: return Problem(error)
        case let error as AccessError: return Problem(error)
        case let error as ReadError: return Problem(error)
        case let refusal as AnsweredRefusal:
            if let problem = try? JSONDecoder().decode(Problem.self, from: Data(refusal.response.body.utf8)) {
                return problem
            }
            logger.error("an answer kept under an Idempotency-Key is not a problem document")
            return Problem(
                status: .internalServerError, code: "internal_error", detail: "the server failed; see its log")
        case let error as any HTTPResponseError: return Problem(error)
        default:
            if let outage = DatabaseUnavailable(error) {
                logger.warning("database unavailable", metadata: ["reason": "\(outage)"])
                return Problem(outage)
            }
            logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            return Problem(
                status: .internalServerError, code: "internal_error", detail: "the server failed; see its log")
        }
    }
}
