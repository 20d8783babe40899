import Foundation
import StrataCore
import StrataTestSupport
import Testing

/// `JSONReader` reads what `JSONDecoder` reads, the same way: the same values from random texts (in
/// every notation and escape a writer may use), the same doubles from random digit strings, the same
/// strings from random escapes and bytes, the same integers whenever a text's value is whole — and it
/// refuses what RFC 8259 does not allow. Set `STRATA_TEST_SEED` to replay other random inputs.
@Suite("Reading JSON")
struct JSONReaderTests {
    static let seed = SplitMix.seed(default: 0x5EED_0002)

    // MARK: the same values as JSONDecoder

    @Test func everyValueReadsAsJSONDecoderReadsIt() throws {
        var random = SplitMix(seed: Self.seed)
        for _ in 0..<1_500 {
            let value = random.jsonValue(depth: 4)
            for text in [
                CanonicalJSON.string(value), JSONTextForms.jsonb(value), JSONTextForms.noisy(value, using: &random),
            ] {
                let expected = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
                let read = try? JSONReader.read(text) { reader throws(JSONReadError) in try reader.value() }
                #expect(expected != nil && read != nil, "\(text)")
                if let read, let expected { #expect(Self.identical(read, expected), "\(text)") }
            }
        }
    }

    @Test func doublesRoundAsJSONDecoderRoundsThem() {
        var random = SplitMix(seed: Self.seed)
        var accepted = 0
        for _ in 0..<20_000 {
            let text = Self.numberText(using: &random)
            var expected = try? JSONDecoder().decode(Double.self, from: Data(text.utf8))
            let read = try? JSONReader.read(text) { reader throws(JSONReadError) in try reader.double() }
            if !text.prefix(while: { $0 != "e" && $0 != "E" }).contains(where: { "123456789".contains($0) }) {
                // Zero, however written (see `zeroWithAnExponentIsZero`).
                expected = text.hasPrefix("-") ? -0.0 : 0
            }
            #expect(read?.bitPattern == expected?.bitPattern, "\(text)")
            if expected != nil { accepted += 1 }
        }
        // Overflow and underflow are refused by both, but most texts must read.
        #expect(accepted > 10_000)
    }

    @Test func wholeNumbersReadAsJSONDecoderReadsThemAndFractionsAreRefused() {
        var random = SplitMix(seed: Self.seed)
        let edges: [Int64] = [
            .max, .min, .max - 1, .min + 1, 9_007_199_254_740_991, 9_007_199_254_740_993, -9_007_199_254_740_993,
            9_223_372_036_854_775_295, 9_223_372_036_854_775_296, 9_223_372_036_854_774_784, 0, 1, -1,
        ]
        var accepted = 0
        for _ in 0..<20_000 {
            let whole: Int64
            switch random.next(below: 4) {
            case 0: whole = edges[random.next(below: edges.count)]
            case 1: whole = Int64(bitPattern: random.next())
            case 2: whole = Int64(bitPattern: random.next()) >> random.next(below: 63)
            default: whole = Int64(random.next(below: 2_000_001)) - 1_000_000
            }
            var text = random.next(below: 3) == 0 ? "\(whole)" : JSONTextForms.noisyNumber("\(whole)", using: &random)
            // Sometimes past what Int64 holds, sometimes with a fraction that is not zero.
            let isWhole = random.next(below: 4) > 0
            if !isWhole { text = "\(whole)." + String(repeating: "0", count: random.next(below: 20)) + "1" }
            if random.next(below: 20) == 0 { text = "9" + text.drop { $0 == "-" } }
            let expected = try? JSONDecoder().decode(Int64.self, from: Data(text.utf8))
            let read = try? JSONReader.read(text) { reader throws(JSONReadError) in try reader.int64() }
            if isWhole {
                #expect(read == expected, "\(text)")
            } else {
                #expect(read == nil, "\(text) is not a whole number")
            }
            if read != nil { accepted += 1 }
        }
        #expect(accepted > 10_000)
    }

    @Test func stringsReadAsJSONDecoderReadsThem() {
        var random = SplitMix(seed: Self.seed)
        // Pieces of a string's inside, good and bad: escapes of every kind, surrogates paired and not,
        // UTF-8 well- and ill-formed, raw control characters.
        let good = [
            "a", "Zq 9", "é", "😀", "\u{2028}", "\u{7f}", "\\n", "\\\"", "\\\\", "\\/", "\\b\\f\\r\\t",
            "\\u00e9", "\\u00E9", "\\u0000", "\\uD83D\\uDE00", "\\ud83d\\ude00",
        ]
        let bad: [[UInt8]] =
            ["\\ud800", "\\udfff", "\\ud800\\u0041", "\\u12", "\\x", "\\", "\u{1}", "\n", "\u{1f}"].map {
                Array($0.utf8)
            }
            + [[0xFF], [0xC3], [0x80], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80]]
        let pieces = good.map { Array($0.utf8) } + bad
        var accepted = 0
        for _ in 0..<20_000 {
            var bytes: [UInt8] = [UInt8(ascii: "\"")]
            for _ in 0..<random.next(below: 5) {
                // Mostly the good pieces, so that a string has a fair chance to be valid.
                let index =
                    random.next(below: 2) == 0 ? random.next(below: good.count) : random.next(below: pieces.count)
                bytes += pieces[index]
            }
            bytes.append(UInt8(ascii: "\""))
            let expected = try? JSONDecoder().decode(String.self, from: Data(bytes))
            let read = try? JSONReader.read(bytes) { reader throws(JSONReadError) in try reader.string() }
            #expect(read == expected, "\(bytes)")
            // Compare the scalars too: String equality forgives a different normalization.
            #expect(read.map { Array($0.unicodeScalars) } == expected.map { Array($0.unicodeScalars) })
            if expected != nil { accepted += 1 }
        }
        #expect(accepted > 5_000)
    }

    @Test func uuidsReadAsUUIDReadsThem() throws {
        var random = SplitMix(seed: Self.seed)
        var accepted = 0
        for _ in 0..<5_000 {
            var characters = Array(random.uuid().uuidString)
            for index in characters.indices where random.next(below: 2) == 0 {
                characters[index] = Character(characters[index].lowercased())
            }
            switch random.next(below: 8) {
            case 0: characters.remove(at: random.next(below: characters.count))
            case 1: characters[random.next(below: characters.count)] = ["g", "-", " ", "{", "0"][random.next(below: 5)]
            case 2: characters.insert("0", at: random.next(below: characters.count))
            default: break
            }
            let text = String(characters)
            // Sometimes with a character escaped, which the reader must unescape first.
            var json = "\"" + text + "\""
            if random.next(below: 4) == 0, let first = text.unicodeScalars.first {
                json = "\"\\u00" + String(first.value, radix: 16) + text.dropFirst() + "\""
            }
            let read = try? JSONReader.read(json) { reader throws(JSONReadError) in try reader.uuid() }
            #expect(read == UUID(uuidString: text), "\(json)")
            if read != nil { accepted += 1 }
        }
        #expect(accepted > 2_500)
    }

    @Test func aRepeatedMemberKeepsItsFirstValueAsWithJSONDecoder() throws {
        let text = #"{"a": 1, "b": [], "a": 2, "a": null}"#
        let read = try JSONReader.read(text) { reader throws(JSONReadError) in try reader.value() }
        #expect(read == .object(["a": .number(1), "b": .array([])]))
        #expect(read == (try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))))
    }

    /// A request must be I-JSON: a member named twice, at any depth and even with the same value, is
    /// refused where the second name's value starts.
    @Test func readingWithUniqueMembersRefusesAMemberNamedTwice() throws {
        func unique(_ text: String) throws(JSONReadError) -> JSONValue {
            try JSONReader.read(text) { reader throws(JSONReadError) in try reader.valueWithUniqueMembers() }
        }
        #expect(try unique(#"{"a": {"b": 1}, "c": [{"b": 2}, {"b": 3}]}"#) != .null)
        for (text, offset) in [
            (#"{"a": 1, "a": 1}"#, 14), (#"{"x": [{"a": 1, "b": 2, "a": 3}]}"#, 29), (#"{"é": 1, "\u00e9": 2}"#, 20),
        ] {
            #expect(throws: JSONReadError.self, "\(text)") { try unique(text) }
            do {
                _ = try unique(text)
            } catch {
                #expect(error.offset == offset, "\(text): \(error)")
                #expect(error.expected.contains("other than"), "\(error)")
            }
        }
    }

    /// The reader differs here, knowingly: this toolchain's `JSONDecoder` refuses some zeros written with
    /// an exponent (`0e7`, `0.00e7`, but not `0e10` or `0.0e7`), a slip in its check for numbers that
    /// underflow to zero.
    @Test(arguments: ["0e7", "0E1", "0.00e7", "-0e5", "0e10", "0.0e-7"])
    func zeroWithAnExponentIsZero(text: String) throws {
        let read = try JSONReader.read(text) { reader throws(JSONReadError) in try reader.double() }
        #expect(read == 0 && read.sign == (text.hasPrefix("-") ? .minus : .plus))
    }

    @Test(arguments: ["1e400", "-1e400", "1e-400", "-2e-324", "1.8e308", "0.1e-330"])
    func numbersThatADoubleCannotHoldAreRefusedButCanBeSkipped(text: String) throws {
        #expect(throws: JSONReadError.self) {
            try JSONReader.read(text) { reader throws(JSONReadError) in try reader.value() }
        }
        #expect(throws: (any Error).self) { try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }
        try JSONReader.read(text) { reader throws(JSONReadError) in try reader.skipValue() }
    }

    @Test func aByteOrderMarkAndWhitespaceAroundTheValueAreIgnored() throws {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array(" \t\r\n[1, \"x\"] \n".utf8)
        #expect(
            try JSONReader.read(bytes) { reader throws(JSONReadError) in try reader.value() }
                == .array([.number(1), .string("x")]))
    }

    // MARK: typed values

    @Test(
        arguments: [
            ("0", 0), ("-0", 0), ("-0.0", 0), ("1.0", 1), ("1e2", 100), ("1E+2", 100), ("2.50e1", 25), ("100e-2", 1),
            ("9223372036854775807", .max), ("-9223372036854775808", .min), ("4611686018427387904.0", 1 << 62),
        ] as [(String, Int)])
    func integersInAnyNotationWhoseValueIsWholeAndFits(text: String, value: Int) throws {
        #expect(try JSONReader.read(text) { reader throws(JSONReadError) in try reader.int() } == value)
        #expect(try JSONDecoder().decode(Int.self, from: Data(text.utf8)) == value)
    }

    @Test(arguments: [
        "1.5", "0.5", "5e-1", "1.00000000000000000001", "1e-400", "9223372036854775808", "-9223372036854775809",
        "1e19", "9223372036854775807.0", "-9223372036854775808.0", "18446744073709551615",
        "18446744073709551616", "18446744073709551626", "99999999999999999999", "-18446744073709551616", "\"1\"",
        "true", "null", "[1]", "1e99999999999",
    ])
    func integersThatAreNotWholeOrDoNotFitAreRefused(text: String) {
        #expect(throws: JSONReadError.self) {
            try JSONReader.read(text) { reader throws(JSONReadError) in try reader.int() }
        }
    }

    @Test func wrongTypesAreRefused() {
        let readers: [(String, (inout JSONReader) throws(JSONReadError) -> Void)] = [
            (#"1"#, { reader throws(JSONReadError) in _ = try reader.string() }),
            (#""true""#, { reader throws(JSONReadError) in _ = try reader.bool() }),
            (#"null"#, { reader throws(JSONReadError) in _ = try reader.string() }),
            (#"{}"#, { reader throws(JSONReadError) in try reader.readArray { _ throws(JSONReadError) in } }),
            (#"[]"#, { reader throws(JSONReadError) in try reader.readObject { _, _ throws(JSONReadError) in } }),
            (#""1.5""#, { reader throws(JSONReadError) in _ = try reader.double() }),
        ]
        for (text, read) in readers {
            #expect(throws: JSONReadError.self, "\(text)") { try JSONReader.read(text, read) }
        }
    }

    // MARK: refusals

    @Test(arguments: [
        "", " ", "{", "[", "[1", "[1,", "{\"a\"", "{\"a\":", "{\"a\":1", "\"abc", "\"abc\\", "\"\\u00", "t", "tru",
        "nul", "falsy", "[1]x", "{} {}", "1 2", "01", "-01", "00", "1.", ".5", "+1", "1e", "1e+", "1.5e", "-", "--1",
        "0x10", "NaN", "Infinity", "-Infinity", "[1,]", "[,]", "[,1]", "{,}",
        "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "{1:2}", "{a:1}", "'a'", "\"a\u{1}b\"", "\"a\nb\"",
        "\"a\u{1f}\"", "\"\\x\"", "\"\\U0041\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800x\"", "\"\\ud800\\u0041\"",
        "\"\\ud800\\ud800\"", "\"\\u12\"", "\"\\u12g4\"", "[1]\u{0}", "[1]\u{c}", "\u{c}[1]",
    ])
    func textsThatAreNotJSONAreRefused(text: String) {
        #expect(throws: JSONReadError.self) {
            try JSONReader.read(text) { reader throws(JSONReadError) in try reader.value() }
        }
        #expect(throws: JSONReadError.self) {
            try JSONReader.read(text) { reader throws(JSONReadError) in try reader.skipValue() }
        }
    }

    @Test(
        arguments: [
            [0xFF], [0xFE], [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xC3], [0xC3, 0x41], [0xE2, 0x82],
            [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xF0, 0x80, 0x80, 0x80],
            [0xF4, 0x90, 0x80, 0x80],
            [0xF5, 0x80, 0x80, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xF0, 0x9F, 0x98],
        ] as [[UInt8]])
    func stringsThatAreNotUTF8AreRefused(bytes: [UInt8]) {
        let text = Array("[\"a".utf8) + bytes + Array("b\"]".utf8)
        #expect(throws: JSONReadError.self) {
            try JSONReader.read(text) { reader throws(JSONReadError) in try reader.value() }
        }
        #expect(throws: JSONReadError.self) {
            try JSONReader.read(text) { reader throws(JSONReadError) in try reader.skipValue() }
        }
    }

    @Test func nestingIsLimitedTo512LevelsAsWithJSONDecoder() throws {
        func nested(_ depth: Int) -> String {
            String(repeating: "[{\"a\":", count: depth / 2) + (depth % 2 == 1 ? "[]" : "1")
                + String(repeating: "}]", count: depth / 2)
        }
        let deepest = nested(JSONReader.maximumDepth)
        _ = try JSONReader.read(deepest) { reader throws(JSONReadError) in try reader.value() }
        _ = try JSONReader.read(deepest) { reader throws(JSONReadError) in try reader.skipValue() }
        _ = try JSONDecoder().decode(JSONValue.self, from: Data(deepest.utf8))
        for text in [nested(JSONReader.maximumDepth + 1), String(repeating: "[", count: 100_000)] {
            #expect(throws: JSONReadError.self) {
                try JSONReader.read(text) { reader throws(JSONReadError) in try reader.value() }
            }
            #expect(throws: JSONReadError.self) {
                try JSONReader.read(text) { reader throws(JSONReadError) in try reader.skipValue() }
            }
        }
        #expect(throws: (any Error).self) {
            try JSONDecoder().decode(JSONValue.self, from: Data(nested(JSONReader.maximumDepth + 1).utf8))
        }
    }

    @Test func aRefusalSaysWhereAndWhatWasExpected() {
        let cases: [(text: String, offset: Int, expected: String)] = [
            (#"{"a": tru}"#, 6, "true or false"),
            (#"[1, 2"#, 5, "',' or ']'"),
            (#"{"a" 1}"#, 5, "':'"),
            (#"[01]"#, 1, "no leading zero"),
            (#"["a\qb"]"#, 3, #"an escape: one of \" \\ \/ \b \f \n \r \t \u"#),
            (#"[1] [2]"#, 4, "the end of the text"),
            (#""abc"#, 4, "the string's closing quote"),
        ]
        for (text, offset, expected) in cases {
            #expect(throws: JSONReadError(offset: offset, expected: expected), "\(text)") {
                try JSONReader.read(text) { reader throws(JSONReadError) in try reader.value() }
            }
        }
    }

    // MARK: helpers

    /// Equal, with numbers compared bit for bit, so that 0.0 and -0.0 differ.
    static func identical(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.number(let x), .number(let y)): return x.bitPattern == y.bitPattern
        case (.array(let xs), .array(let ys)): return xs.count == ys.count && zip(xs, ys).allSatisfy(identical)
        case (.object(let xs), .object(let ys)):
            return xs.count == ys.count && xs.allSatisfy { key, x in ys[key].map { identical(x, $0) } ?? false }
        default: return a == b
        }
    }

    /// A number as a person or another program might write it: up to 25 digits, a fraction or not, an
    /// exponent up to ±400 (sometimes far more), zeros and negative zero.
    static func numberText(using random: inout SplitMix) -> String {
        func digits(_ count: Int, _ random: inout SplitMix) -> String {
            String((0..<count).map { _ in Character(String(random.next(below: 10))) })
        }
        var text = random.next(below: 3) == 0 ? "-" : ""
        let integerCount = random.next(below: 4) == 0 ? 1 : random.next(below: 25) + 1
        text +=
            integerCount == 1
            ? digits(1, &random) : String(random.next(below: 9) + 1) + digits(integerCount - 1, &random)
        if random.next(below: 2) == 0 { text += "." + digits(random.next(below: 25) + 1, &random) }
        if random.next(below: 2) == 0 {
            let magnitude = random.next(below: 20) == 0 ? random.next(below: 100_000) : random.next(below: 401)
            text += ["e", "E", "e+", "E-", "e-"][random.next(below: 5)] + String(magnitude)
        }
        return text
    }
}
