import Foundation
import StrataCore
import Testing

@Suite("Timestamps on the wire")
struct TimestampTests {
    @Test(arguments: [
        (1_790_000_000.123, "2026-09-21T14:13:20.123Z"),
        (0.0, "1970-01-01T00:00:00.000Z"),
        (951_782_400.5, "2000-02-29T00:00:00.500Z"),
        (1_790_000_000.9996, "2026-09-21T14:13:21.000Z"),
    ])
    func areRFC3339InUTCWithMilliseconds(seconds: Double, expected: String) {
        #expect(Timestamp.string(from: Date(timeIntervalSince1970: seconds)) == expected)
    }

    @Test func formattingDoesNotChangeAfterARoundTripThroughMicroseconds() {
        let date = Timestamp.truncated(Date(timeIntervalSince1970: 1_790_000_000.123_456))
        let throughPostgres = Date(
            timeIntervalSince1970: (date.timeIntervalSince1970 * 1_000_000).rounded() / 1_000_000)
        #expect(Timestamp.string(from: date) == Timestamp.string(from: throughPostgres))
    }
}
