import ArgumentParser
import Foundation
import Logging
import StrataCore
import StrataStore

/// `strata token`: grant, list and revoke API tokens, straight on the database (the embedded cluster or
/// `DATABASE_URL`), for operators who have no token yet or have lost theirs.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Create, list and revoke API tokens.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    /// Who appends the events of the command line: the operator's login, marked as such.
    static var actor: String {
        TokenName.commandLinePrefix
            + (ProcessInfo.processInfo.environment["USER"] ?? String(cString: getlogin() ?? strdup("unknown")))
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Grant a token; its secret is printed once, on standard output.")

        @OptionGroup var database: DatabaseOptions
        @Option(help: "The token's name: the actor of every event it appends.") var name: String
        @Option(help: "reader, writer or admin.") var role: String
        @Option(help: "Limit the token to this namespace; repeat for several. Default: every namespace.")
        var namespace: [String] = []

        func validate() throws {
            guard Role(rawValue: role) != nil else { throw ValidationError("--role must be reader, writer or admin") }
            guard TokenName.isValid(name) else {
                throw ValidationError(
                    "--name must be 1 to 128 letters, digits and . _ @ : + -, starting with a letter or digit")
            }
            guard !TokenName.isReserved(name) else {
                throw ValidationError("--name '\(name)' is an actor the catalog records as itself; choose another")
            }
            guard namespace.allSatisfy({ (1...1024).contains($0.count) }) else {
                throw ValidationError("--namespace must be 1 to 1024 characters")
            }
        }

        func run() async throws {
            let configuration = try StrataConfiguration(database: database)
            let logger = configuration.makeLogger()
            let secret = TokenSecret.generate()
            let (name, role, namespaces) = (name, Role(rawValue: role)!, namespace)
            let request = CatalogWriter.Request(
                target: .createToken(
                    UUIDv7.make(), name: name, role: role, namespaces: namespaces,
                    secretSHA256: TokenSecret.sha256(secret)),
                metadata: EventMetadata(actor: TokenCommand.actor), occurredAt: Timestamp.truncated(Date())
            ) { _ in StoredResponse(status: 201, headers: [:], body: "") }
            try await TokenCommand.write(request, configuration: configuration, logger: logger)
            let scope = namespaces.isEmpty ? "every namespace" : namespaces.joined(separator: ", ")
            FileHandle.standardError.write(
                Data("created token '\(name)' (\(role.rawValue), \(scope)); its secret is shown once:\n".utf8))
            print(secret)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the valid tokens.")

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let configuration = try StrataConfiguration(database: database)
            let logger = configuration.makeLogger()
            let tokens = try await DatabaseSession.with(configuration, logger: logger, existingOnly: true) { client in
                try await CatalogSchema.bundled().prepare(client, logger: logger)
                return try await CatalogReader(client: client, logger: logger).read { try await $0.tokens() }.result
            }
            print(["NAME", "ROLE", "NAMESPACES", "CREATED", "BY"].joined(separator: "\t"))
            for token in tokens {
                let namespaces = token.namespaces.isEmpty ? "*" : token.namespaces.joined(separator: ",")
                print(
                    [
                        token.name, token.role.rawValue, namespaces, Timestamp.string(from: token.createdAt),
                        token.createdBy,
                    ]
                    .joined(separator: "\t"))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a token; every server sharing the database refuses it within a second.")

        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The token's name.") var name: String

        func run() async throws {
            let configuration = try StrataConfiguration(database: database)
            let logger = configuration.makeLogger()
            let request = CatalogWriter.Request(
                target: .revokeToken(name: name), metadata: EventMetadata(actor: TokenCommand.actor),
                occurredAt: Timestamp.truncated(Date())
            ) { _ in StoredResponse(status: 204, headers: [:], body: "") }
            do {
                try await TokenCommand.write(request, configuration: configuration, logger: logger)
            } catch AccessError.tokenNotFound {
                throw TokenCommand.refused("no valid token is named '\(name)'", exit: .notFound)
            }
            print("revoked token '\(name)'")
        }
    }

    /// Submits one write through the append pipeline, on a migrated database.
    static func write(_ request: CatalogWriter.Request, configuration: StrataConfiguration, logger: Logger)
        async throws
    {
        try await DatabaseSession.with(configuration, logger: logger, existingOnly: true) { client in
            try await CatalogSchema.bundled().prepare(client, logger: logger)
            do {
                _ = try await CatalogWriter(client: client, logger: logger).submit(request)
            } catch AccessError.tokenNameTaken(let name) {
                throw refused("a valid token is already named '\(name)'; revoke it first", exit: .conflict)
            }
        }
    }

    /// Says why on standard error, and exits with the code a client verb gives the same refusal over
    /// HTTP (409 and 404), not the code of a mistyped command line.
    static func refused(_ message: String, exit code: ClientFailure.ExitCode) -> ExitCode {
        FileHandle.standardError.write(Data("strata: \(message)\n".utf8))
        return ExitCode(code.rawValue)
    }
}
