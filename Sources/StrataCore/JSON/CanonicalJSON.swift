import Foundation

/// The one way Strata writes JSON: keys sorted, slashes unescaped. The same value always gives the same
/// bytes, which is what lets a rebuilt projection equal the live one byte for byte.
public enum CanonicalJSON {
    public static func string(_ value: some Encodable) -> String {
        encoded(value)
    }

    /// A ``JSONValue`` goes straight into bytes with ``CanonicalJSONWriter``, which writes the encoder's
    /// bytes: the encoder, through `Encodable`'s boxes and `Double`'s formatting, took a third of the
    /// server's time answering a lineage graph.
    public static func string(_ value: JSONValue) -> String {
        var writer = CanonicalJSONWriter()
        writer.value(value)
        return writer.string
    }

    /// What `JSONEncoder` writes, sorting keys and leaving slashes alone: the definition of the form,
    /// which ``CanonicalJSONWriter`` is held to.
    public static func encoded(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Everything Strata encodes is built from strings, integers, booleans and finite numbers parsed
        // from JSON, which always encode.
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }
}
