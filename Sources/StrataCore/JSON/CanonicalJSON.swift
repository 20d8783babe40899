import Foundation

/// The one way Strata writes JSON: keys sorted, slashes unescaped. The same value always gives the same
/// bytes, which is what lets a rebuilt projection equal the live one byte for byte.
public enum CanonicalJSON {
    public static func string(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Everything Strata encodes is built from strings, integers, booleans and finite numbers parsed
        // from JSON, which always encode.
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }
}
