@testable import Contracts
import Foundation
import PropertyBased
import Testing

/// `ce_time` is written by hand; it must read exactly as Foundation's ISO 8601 style writes the same instant.
@Suite("RFC 3339 timestamps")
struct RFC3339Tests {
    @Test func handWrittenTimesMatchFoundationsFormat() async {
        // Instants in the middle of a millisecond (so Double rounding cannot move them across one), years 1900-9999.
        await propertyCheck(count: 5_000, input: Gen.int(in: -2_208_988_800_000...253_402_300_799_999)) { millis in
            let date = Date(timeIntervalSince1970: (Double(millis) + 0.5) / 1_000)
            #expect(RFC3339.format(date) == RFC3339.foundationFormat(date))
        }
    }

    @Test(arguments: [
        (0.0, "1970-01-01T00:00:00.000Z"), (-1.5, "1969-12-31T23:59:58.500Z"), (951_782_400.25, "2000-02-29T00:00:00.250Z"),
        (-2_203_891_200, "1900-03-01T00:00:00.000Z"), (1_709_164_799.999_5, "2024-02-28T23:59:59.999Z"),
        (1_764_782_000.123_456, "2025-12-03T17:13:20.123Z"), (-2_208_988_800, "1900-01-01T00:00:00.000Z"),
    ])
    func knownInstants(seconds: Double, text: String) {
        #expect(RFC3339.format(Date(timeIntervalSince1970: seconds)) == text)
        #expect(RFC3339.parse(text).map { RFC3339.format($0) } == text, "what is written parses back")
    }

    @Test func instantsOutsideTheYears1900To9999AreWrittenByFoundation() {
        for seconds in [253_402_300_800.0 + 86_400, -2_208_988_800.5, -62_135_596_800, -12_219_292_800.5] {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(RFC3339.format(date) == RFC3339.foundationFormat(date))
        }
    }
}
