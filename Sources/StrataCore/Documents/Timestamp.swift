import Foundation

/// RFC 3339 timestamps as the API writes them: UTC, millisecond precision (`2026-11-22T02:51:37.123Z`).
///
/// Formatting goes through whole milliseconds, so a time that made a round trip through PostgreSQL's
/// microseconds prints exactly as it did before — which keeps rebuilt projections byte-identical.
public enum Timestamp {
    public static func string(from date: Date) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(24)
        write(date, into: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// Appends the timestamp's text to `bytes`: the documents the projector renders write it straight in.
    public static func write(_ date: Date, into text: inout [UInt8]) {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let seconds = milliseconds.floorDivided(by: 1000)
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        // Digits by hand: String(format:) goes through C varargs and showed up in the rebuild's profile.
        func append(_ value: Int, width: Int) {
            let start = text.count
            var rest = value
            for _ in 0..<width {
                text.append(0x30 + UInt8(rest % 10))
                rest /= 10
            }
            text[start...].reverse()
        }
        append(Int(parts.tm_year) + 1900, width: 4)
        text.append(0x2D)
        append(Int(parts.tm_mon) + 1, width: 2)
        text.append(0x2D)
        append(Int(parts.tm_mday), width: 2)
        text.append(0x54)
        append(Int(parts.tm_hour), width: 2)
        text.append(0x3A)
        append(Int(parts.tm_min), width: 2)
        text.append(0x3A)
        append(Int(parts.tm_sec), width: 2)
        text.append(0x2E)
        append(Int(milliseconds - seconds * 1000), width: 3)
        text.append(0x5A)
    }

    /// A date rounded to whole milliseconds, the precision every timestamp is taken at.
    public static func truncated(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }
}

extension Int64 {
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}
