/// What search finds a set of words by, as PostgreSQL's `tsvector`: each distinct word once, with the
/// positions it holds in the fields read one after the other, each position marked with the weight of
/// its field. The GIN index over these answers `search @@ query`; `ts_rank_cd` ranks by the weights and
/// by how close the words searched for stand.
///
/// It is made here, not by `to_tsvector` in the table: that cost PostgreSQL ~27 µs a row, most of a
/// rebuild's time, where this costs a few. And one function, ``forEachWord(in:_:)``, now splits both
/// what is indexed and what is searched for into words, so the two cannot disagree — `to_tsvector`
/// lowercased only ASCII letters under the catalog's C locale, and missed `Éclair` searched for as
/// `éclair`.
struct SearchVector: Sendable, Equatable {
    /// How telling a match in a field is, as PostgreSQL keeps it in a position's top two bits.
    enum Weight: UInt16 {
        case a = 3
        case b = 2
        case c = 1
        case d = 0
    }

    struct Entry: Sendable, Equatable {
        /// The word, lowercased, in UTF-8.
        var word: [UInt8]
        /// Ascending positions, each with its weight in the top two bits.
        var positions: [UInt16]
    }

    /// Every distinct word in byte order, the order PostgreSQL keeps them in.
    private(set) var entries: [Entry]

    // PostgreSQL's limits: a word of 2,047 bytes or more is not indexed, a position is at most 16,383, a
    // word keeps at most 256 positions, and a vector's words take less than 1 MB.
    static let longestWord = 2046
    static let lastPosition = 16_383
    static let mostPositions = 256
    static let mostWordBytes = (1 << 20) - 1

    /// The words of `fields`, read in order, each text's words weighted by its field's weight.
    init(_ fields: [(weight: Weight, texts: [String])]) {
        var positions: [[UInt8]: [UInt16]] = [:]
        var (position, wordBytes) = (0, 0)
        for (weight, texts) in fields {
            for text in texts {
                Self.forEachWord(in: text) { word in
                    guard word.count <= Self.longestWord else { return }
                    position = min(position + 1, Self.lastPosition)
                    let marked = UInt16(position) | weight.rawValue << 14
                    if var held = positions[word] {
                        // Past the last position every word stands at it: it counts once.
                        guard held.count < Self.mostPositions, held.last! & 0x3FFF < UInt16(position) else { return }
                        held.append(marked)
                        positions[word] = held
                    } else if wordBytes + word.count <= Self.mostWordBytes {
                        wordBytes += word.count
                        positions[word] = [marked]
                    }
                }
            }
        }
        entries = positions.map { Entry(word: $0.key, positions: $0.value) }
            .sorted { $0.word.lexicographicallyPrecedes($1.word) }
    }

    /// The words of `text`: its runs of letters and digits, lowercased. `customer_id` is `customer`
    /// and `id`, `s3://lake/orders` is `s3`, `lake` and `orders`, `dataset-2919` is `dataset` and `2919`.
    static func words(in text: String) -> [String] {
        var words: [String] = []
        forEachWord(in: text) { words.append(String(decoding: $0, as: UTF8.self)) }
        return words
    }

    /// Calls `body` with each word of `text` (see ``words(in:)``) in UTF-8, in a buffer it reuses.
    static func forEachWord(in text: String, _ body: ([UInt8]) -> Void) {
        var word: [UInt8] = []
        for scalar in text.unicodeScalars {
            if scalar.isASCII {
                let byte = UInt8(scalar.value)
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    word.append(byte)
                    continue
                case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                    word.append(byte + 32)
                    continue
                default: break
                }
            } else if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                word.append(contentsOf: scalar.properties.lowercaseMapping.utf8)
                continue
            }
            if !word.isEmpty {
                body(word)
                word.removeAll(keepingCapacity: true)
            }
        }
        if !word.isEmpty { body(word) }
    }

    /// The binary form (PostgreSQL's `tsvectorsend`), appended to `bytes`: the number of words, then
    /// each word NUL-terminated, its number of positions, and the positions.
    func appendBinary(to bytes: inout [UInt8]) {
        func append<Integer: FixedWidthInteger>(_ value: Integer) {
            withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
        }
        append(Int32(entries.count))
        for entry in entries {
            bytes.append(contentsOf: entry.word)
            bytes.append(0)
            append(UInt16(entry.positions.count))
            for position in entry.positions { append(position) }
        }
    }

    /// The text form, for a cast: `'word':1A,4C 'other':2` (weight D is written as no letter).
    var text: String {
        entries.map { entry in
            // Words are letters and digits only, so nothing in one needs escaping.
            let positions = entry.positions.map { position in
                let weight = ["", "C", "B", "A"][Int(position >> 14)]
                return "\(position & 0x3FFF)\(weight)"
            }
            return "'\(String(decoding: entry.word, as: UTF8.self))':\(positions.joined(separator: ","))"
        }.joined(separator: " ")
    }
}

extension DatasetProjector.WordsRow {
    /// The search vector of these words: a name or a column name weighs most (A), then a tag, the owner
    /// or the format (B), then the description (C), then a property key (D).
    var searchVector: SearchVector {
        SearchVector([
            (.a, [namespace, name] + columnNames), (.b, tags + [owner, format].compactMap { $0 }),
            (.c, [description].compactMap { $0 }), (.d, propertyKeys),
        ])
    }
}
