import Foundation

/// The files Strata carries inside its binary: `Migrations/`, `Projections/` and `Schemas/` from the
/// top of the repository, and the web UI's static files, so `strata` behaves the same from any working
/// directory.
public enum StrataResources {
    public enum Folder: String, Sendable {
        case migrations = "Migrations"
        case projections = "Projections"
        case schemas = "Schemas"
        /// The web UI: HTML, CSS and JavaScript served as they are, with no build step.
        case ui = "UI"
    }

    /// One carried file: its path below the folder (`events/DatasetCreated.v1.json`) and its text.
    public struct File: Sendable, Equatable {
        public var name: String
        public var contents: String
    }

    /// Every file of `folder` whose name ends in `.<fileExtension>`, in name order, subfolders included.
    public static func files(in folder: Folder, withExtension fileExtension: String) throws -> [File] {
        let root = try url(of: folder)
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return [] }
        let names = walker.compactMap { $0 as? String }.filter { $0.hasSuffix("." + fileExtension) }.sorted()
        return try names.map { name in
            File(name: name, contents: try String(contentsOf: root.appendingPathComponent(name), encoding: .utf8))
        }
    }

    /// One file by its path below `folder`.
    public static func file(_ name: String, in folder: Folder) throws -> File {
        let url = try url(of: folder).appendingPathComponent(name)
        return File(name: name, contents: try String(contentsOf: url, encoding: .utf8))
    }

    /// Where `folder` is on disk, for serving its files as they are.
    public static func path(of folder: Folder) throws -> String {
        try url(of: folder).path
    }

    private static func url(of folder: Folder) throws -> URL {
        guard let url = Bundle.module.url(forResource: folder.rawValue, withExtension: nil) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: folder.rawValue])
        }
        return url
    }
}
