import Foundation
import StrataCore
import StrataResources
import Yams

/// The API's description as the server serves it: `Schemas/openapi.yaml` made self-contained.
///
/// The source keeps its JSON Schemas in files beside it (`common.json`, `requests/*.json`), which the
/// server validates with and tests check; generic OpenAPI tooling (clients, fuzzers, Swagger UI) can
/// only follow references inside the document. So every external `$ref` is resolved once, at start:
/// a whole file or a `$defs` entry becomes a schema under `components/schemas`, named for it, and a
/// reference deeper into a definition is copied in place. Nothing else in the document changes.
///
/// Yams reads and writes the YAML (and reads the JSON files: JSON is YAML). The references are rewritten
/// here rather than by OpenAPIKit, whose document model drops the JSON Schema keywords it does not
/// know (`$comment`, `not`, `propertyNames` …) when it writes a document back.
public struct OpenAPIDocument: Sendable {
    public let yaml: String
    public let json: String
    /// The query parameters each operation takes, by `METHOD /path/{template}` (see ``QueryParameterCheck``).
    let queryParameters: [String: Set<String>]

    /// The bundled copy of the carried `Schemas/openapi.yaml`.
    public static func bundled() throws -> OpenAPIDocument {
        var bundler = Bundler(
            load: { path in try StrataResources.file(path, in: .schemas).contents })
        let root = try bundler.bundle(mainFile: "openapi.yaml")
        return OpenAPIDocument(
            yaml: try Yams.serialize(node: root, width: 120), json: CanonicalJSON.string(try root.json),
            queryParameters: queryParameters(in: root))
    }

    /// Each operation's query parameters, its path's and its own, references to
    /// `#/components/parameters` followed.
    static func queryParameters(in root: Node) -> [String: Set<String>] {
        let shared = root["components"]?["parameters"]?.mapping
        func resolved(_ parameter: Node) -> Node? {
            guard let reference = parameter["$ref"]?.string else { return parameter }
            return shared?[String(reference.split(separator: "/").last ?? "")]
        }
        func queryNames(_ parameters: Node?) -> Set<String> {
            Set(
                (parameters?.sequence ?? []).compactMap(resolved).filter { $0["in"]?.string == "query" }.compactMap {
                    $0["name"]?.string
                })
        }
        var operations: [String: Set<String>] = [:]
        for (path, item) in root["paths"]?.mapping ?? [:] {
            guard let path = path.string, let item = item.mapping else { continue }
            let common = queryNames(item["parameters"])
            for (method, operation) in item {
                guard let method = method.string, method != "parameters" else { continue }
                operations["\(method.uppercased()) \(path)"] = common.union(queryNames(operation["parameters"]))
            }
        }
        return operations
    }
}

/// Resolves the external references of one document into its `components/schemas`.
struct Bundler {
    /// Reads a file of the document's folder by its path relative to it (`requests/CreateDataset.json`).
    let load: (String) throws -> String
    private var files: [String: Node] = [:]
    /// The component each external target became, by its absolute reference (`common.json#/$defs/Uuid`).
    private var components: [String: String] = [:]
    private var schemas: [(name: String, schema: Node)] = []

    init(load: @escaping (String) throws -> String) {
        self.load = load
    }

    mutating func bundle(mainFile: String) throws -> Node {
        guard var root = try Yams.compose(yaml: load(mainFile)) else { throw BundleError("\(mainFile) is empty") }
        root = try rewritten(root, in: mainFile)
        guard var rootMapping = root.mapping else { throw BundleError("\(mainFile) is not a mapping") }
        var componentsNode = rootMapping["components"]?.mapping ?? Node.Mapping([])
        var schemaMapping = componentsNode["schemas"]?.mapping ?? Node.Mapping([])
        for (name, schema) in schemas {
            guard schemaMapping[name] == nil else { throw BundleError("components/schemas/\(name) exists twice") }
            schemaMapping[name] = schema
        }
        componentsNode["schemas"] = .mapping(schemaMapping)
        rootMapping["components"] = .mapping(componentsNode)
        return .mapping(rootMapping)
    }

    /// `node` with every reference that leaves the document pointed at a component instead; `file` is
    /// where `node` came from, against which its relative references resolve.
    private mutating func rewritten(_ node: Node, in file: String) throws -> Node {
        switch node {
        case .mapping(var mapping):
            if let reference = mapping["$ref"]?.string, !(file == "openapi.yaml" && reference.hasPrefix("#")) {
                let (targetFile, pointer) = resolve(reference, from: file)
                if let name = try componentName(file: targetFile, pointer: pointer) {
                    mapping["$ref"] = .scalar(.init("#/components/schemas/\(name)", .implicit, .singleQuoted))
                    return .mapping(mapping)
                }
                // A reference into the middle of a definition: its target, copied in place.
                return try rewritten(try target(file: targetFile, pointer: pointer), in: targetFile)
            }
            var result = Node.Mapping([])
            for (key, value) in mapping { result[key] = try rewritten(value, in: file) }
            return .mapping(result)
        case .sequence(let sequence):
            return .sequence(Node.Sequence(try sequence.map { try rewritten($0, in: file) }))
        default:
            return node
        }
    }

    /// The component a whole file or a `$defs` entry becomes, created on first use; nil for any other
    /// target.
    private mutating func componentName(file: String, pointer: [String]) throws -> String? {
        let key = file + "#/" + pointer.joined(separator: "/")
        if let name = components[key] { return name }
        let stem = String(file.split(separator: "/").last!.split(separator: ".").first!)
        let name: String
        switch pointer.count {
        case 0: name = stem
        case 2 where pointer[0] == "$defs": name = pointer[1]
        default: return nil
        }
        // Registered before its own references are followed: a definition may refer to itself.
        components[key] = name
        var schema = try rewritten(try target(file: file, pointer: pointer), in: file)
        if var mapping = schema.mapping {
            // Inside the document these would change how its own references resolve, or repeat what is
            // now a component.
            for keyword in ["$schema", "$id", "$defs"] { mapping[keyword] = nil }
            schema = .mapping(mapping)
        }
        schemas.append((name, schema))
        return name
    }

    private mutating func target(file: String, pointer: [String]) throws -> Node {
        if files[file] == nil {
            guard let node = try Yams.compose(yaml: load(file)) else { throw BundleError("\(file) is empty") }
            files[file] = node
        }
        var node = files[file]!
        for step in pointer {
            switch node {
            case .mapping(let mapping):
                guard let next = mapping[step] else {
                    throw BundleError("\(file) has no /\(pointer.joined(separator: "/"))")
                }
                node = next
            case .sequence(let sequence):
                guard let index = Int(step), sequence.indices.contains(index) else {
                    throw BundleError("\(file) has no /\(pointer.joined(separator: "/"))")
                }
                node = sequence[index]
            default:
                throw BundleError("\(file) has no /\(pointer.joined(separator: "/"))")
            }
        }
        return node
    }

    /// A reference made absolute: the file (relative to the document's folder) and the JSON Pointer's steps.
    private func resolve(_ reference: String, from file: String) -> (file: String, pointer: [String]) {
        let parts = reference.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts[0])
        var folder = file.split(separator: "/").dropLast().map(String.init)
        var target = file
        if !path.isEmpty {
            for step in path.split(separator: "/") {
                switch step {
                case ".": continue
                case "..": _ = folder.popLast()
                default: folder.append(String(step))
                }
            }
            target = folder.joined(separator: "/")
        }
        let pointer =
            parts.count > 1
            ? parts[1].split(separator: "/").map {
                $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            } : []
        return (target, pointer)
    }
}

struct BundleError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension Node {
    /// The node as JSON, its scalars typed as YAML resolves them (quoted ones stay strings).
    var json: JSONValue {
        get throws {
            switch self {
            case .mapping(let mapping):
                var object: [String: JSONValue] = [:]
                for (key, value) in mapping {
                    guard let name = key.string else { throw BundleError("a mapping key is not a string") }
                    object[name] = try value.json
                }
                return .object(object)
            case .sequence(let sequence):
                return .array(try sequence.map { try $0.json })
            case .scalar(let scalar):
                switch tag.description {
                case Tag.Name.null.rawValue: return .null
                case Tag.Name.bool.rawValue: return .bool(bool ?? false)
                case Tag.Name.int.rawValue, Tag.Name.float.rawValue:
                    guard let number = float else { throw BundleError("'\(scalar.string)' is not a number") }
                    return .number(number)
                default: return .string(scalar.string)
                }
            case .alias:
                throw BundleError("YAML aliases are not used in the document")
            }
        }
    }
}
