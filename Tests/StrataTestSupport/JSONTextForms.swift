import Foundation
import StrataCore

/// A JSON value written out again as other writers write it, to check that a reader takes every form of
/// the same value: PostgreSQL's `jsonb` output, which is what a rebuild reads back from the log, and a
/// noisy form full of whitespace, needless escapes and odd number notations that change nothing.
///
/// Numbers start from the text Strata writes for them (``CanonicalJSON``), so whole numbers beyond 2^53,
/// which a `JSONValue` cannot hold exactly, have no place here.
public enum JSONTextForms {
    /// As PostgreSQL prints a `jsonb`: a space after each ':' and ',', object members ordered by the
    /// length of their names and then by their bytes, numbers in plain decimal notation (a `numeric`
    /// keeps the digits it was given and prints them without an exponent: `1e+300` comes back as a one
    /// and 300 zeros), and strings escaping only what JSON requires, control characters as `\u00xx` in
    /// lower case: no '/', nothing outside ASCII.
    public static func jsonb(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let number): return DecimalText(CanonicalJSON.string(JSONValue.number(number))).plain
        case .string(let text): return jsonbQuoted(text)
        case .array(let elements): return "[" + elements.map(jsonb).joined(separator: ", ") + "]"
        case .object(let members):
            let ordered = members.sorted { a, b in
                a.key.utf8.count != b.key.utf8.count
                    ? a.key.utf8.count < b.key.utf8.count : a.key.utf8.lexicographicallyPrecedes(b.key.utf8)
            }
            return "{" + ordered.map { jsonbQuoted($0.key) + ": " + jsonb($0.value) }.joined(separator: ", ") + "}"
        }
    }

    private static func jsonbQuoted(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\u{08}": quoted += "\\b"
            case "\u{0C}": quoted += "\\f"
            case "\n": quoted += "\\n"
            case "\r": quoted += "\\r"
            case "\t": quoted += "\\t"
            case ..<" ": quoted += String(format: "\\u%04x", scalar.value)
            default: quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + "\""
    }

    /// The value with random whitespace (spaces, tabs, newlines, carriage returns) around every token,
    /// object members in random order, characters randomly escaped that need no escape (`\u0041`, `\/`,
    /// a surrogate pair for an emoji, hex digits in either case), and numbers in random notations of the
    /// same value (`1500` as `1.5e3`, `15E+2`, `1500.00`).
    public static func noisy(_ value: JSONValue, using random: inout SplitMix) -> String {
        var text = ""
        writeNoisy(value, to: &text, using: &random)
        return text
    }

    private static func writeNoisy(_ value: JSONValue, to text: inout String, using random: inout SplitMix) {
        text += whitespace(using: &random)
        switch value {
        case .null: text += "null"
        case .bool(let flag): text += flag ? "true" : "false"
        case .number(let number): text += noisyNumber(CanonicalJSON.string(JSONValue.number(number)), using: &random)
        case .string(let string): text += noisyQuoted(string, using: &random)
        case .array(let elements):
            text += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { text += whitespace(using: &random) + "," }
                writeNoisy(element, to: &text, using: &random)
            }
            text += whitespace(using: &random) + "]"
        case .object(let members):
            text += "{"
            for (index, member) in members.shuffled(using: &random).enumerated() {
                if index > 0 { text += whitespace(using: &random) + "," }
                text += whitespace(using: &random) + noisyQuoted(member.key, using: &random)
                text += whitespace(using: &random) + ":"
                writeNoisy(member.value, to: &text, using: &random)
            }
            text += whitespace(using: &random) + "}"
        }
        text += whitespace(using: &random)
    }

    /// The number written as `text` (JSON's grammar), in a random notation of the same value.
    public static func noisyNumber(_ text: String, using random: inout SplitMix) -> String {
        DecimalText(text).noisy(using: &random)
    }

    private static func whitespace(using random: inout SplitMix) -> String {
        ["", "", "", " ", "\t", "\n", "\r\n", " \t\n  "][random.next(below: 8)]
    }

    private static func noisyQuoted(_ text: String, using random: inout SplitMix) -> String {
        func unicodeEscape(_ unit: UInt32, _ random: inout SplitMix) -> String {
            let hex = String(format: "%04x", unit)
            return "\\u" + (random.next(below: 2) == 0 ? hex : hex.uppercased())
        }
        var quoted = "\""
        for scalar in text.unicodeScalars {
            let escapeAnyway = random.next(below: 4) == 0
            switch scalar {
            case "\"", "\\", "\u{08}", "\u{0C}", "\n", "\r", "\t":
                let short: [Unicode.Scalar: String] = [
                    "\"": "\\\"", "\\": "\\\\", "\u{08}": "\\b", "\u{0C}": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                ]
                quoted += escapeAnyway ? unicodeEscape(scalar.value, &random) : short[scalar]!
            case ..<" ": quoted += unicodeEscape(scalar.value, &random)
            case "/" where escapeAnyway: quoted += random.next(below: 2) == 0 ? "\\/" : unicodeEscape(0x2F, &random)
            case _ where !escapeAnyway: quoted.unicodeScalars.append(scalar)
            case _ where scalar.value > 0xFFFF:
                let offset = scalar.value - 0x10000
                quoted +=
                    unicodeEscape(0xD800 + offset >> 10, &random) + unicodeEscape(0xDC00 + offset & 0x3FF, &random)
            default: quoted += unicodeEscape(scalar.value, &random)
            }
        }
        return quoted + "\""
    }
}

/// A number's decimal text taken apart as digits times a power of ten, to write it again in another
/// notation of the same value.
private struct DecimalText {
    var isNegative: Bool
    /// No leading zeros (just "0" for zero), no trailing zeros.
    var digits: [Character]
    var exponent: Int

    init(_ text: String) {
        isNegative = text.hasPrefix("-")
        let unsigned = text.drop { $0 == "-" }
        let mantissa = unsigned.prefix { $0 != "e" && $0 != "E" }
        exponent = unsigned.count > mantissa.count ? Int(unsigned.dropFirst(mantissa.count + 1))! : 0
        let point = mantissa.firstIndex(of: ".")
        exponent -= point.map { mantissa.distance(from: $0, to: mantissa.endIndex) - 1 } ?? 0
        digits = Array(mantissa.filter { $0 != "." }.drop { $0 == "0" })
        while digits.last == "0" {
            digits.removeLast()
            exponent += 1
        }
        if digits.isEmpty { (digits, exponent) = (["0"], 0) }
    }

    /// Without an exponent, all its digits written out.
    var plain: String {
        let sign = isNegative ? "-" : ""
        if exponent >= 0 {
            return sign + String(digits) + String(repeating: "0", count: digits == ["0"] ? 0 : exponent)
        }
        let padded = Array(repeating: "0", count: max(0, -exponent - digits.count + 1)) + digits
        return sign + String(padded.dropLast(-exponent)) + "." + String(padded.suffix(-exponent))
    }

    /// With a few trailing zeros more, the point anywhere, and an exponent (any case, any sign) making up
    /// for where the point went.
    func noisy(using random: inout SplitMix) -> String {
        if digits == ["0"] {
            // JSON allows no more zeros before the point. (No exponent: this toolchain's `JSONDecoder`
            // refuses some zeros that have one, such as `0e7`.)
            return (isNegative ? "-0" : "0") + [".0", ".000", ""][random.next(below: 3)]
        }
        let zeros = random.next(below: 3)
        let written = digits + Array(repeating: "0", count: zeros)
        // How many digits stand before the point; none means "0." and the digits after it.
        let before = random.next(below: written.count + 1)
        let scale = exponent - zeros + (written.count - before)
        var text = isNegative ? "-" : ""
        text += before == 0 ? "0" : String(written.prefix(before))
        if before < written.count { text += "." + String(written.dropFirst(before)) }
        if scale != 0 || random.next(below: 3) == 0 {
            text += random.next(below: 2) == 0 ? "e" : "E"
            text += scale < 0 ? "-" : ["", "+"][random.next(below: 2)]
            text += String(abs(scale))
        }
        return text
    }
}
