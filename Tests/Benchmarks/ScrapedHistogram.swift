import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A Prometheus histogram read from a service's `/metrics`: cumulative counts by upper bound (seconds), summed over
/// the series whose line contains every one of `matching` (for example a route's label).
struct ScrapedHistogram {
    var cumulative: [Double: Double] = [:]

    static func scrape(port: Int, metric: String, matching: [String] = []) async throws -> ScrapedHistogram {
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/metrics")!)
        var histogram = ScrapedHistogram()
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix(metric + "_bucket") {
            guard matching.allSatisfy({ line.contains($0) }), let le = line.range(of: #"le="([^"]+)""#, options: .regularExpression) else { continue }
            let bound = line[le].dropFirst(4).dropLast()
            let value = Double(line.split(separator: " ").last ?? "0") ?? 0
            histogram.cumulative[bound == "+Inf" ? .infinity : Double(bound) ?? .infinity, default: 0] += value
        }
        return histogram
    }

    /// What was recorded between `earlier` and this scrape.
    func since(_ earlier: ScrapedHistogram) -> ScrapedHistogram {
        ScrapedHistogram(cumulative: cumulative.merging(earlier.cumulative.mapValues { -$0 }) { $0 + $1 })
    }

    var count: Double { cumulative[.infinity] ?? cumulative.values.max() ?? 0 }

    /// The `q` quantile in milliseconds, interpolated linearly within its bucket.
    func percentile(_ q: Double) -> Double {
        let bounds = cumulative.keys.sorted()
        guard let total = bounds.last.flatMap({ cumulative[$0] }), total > 0 else { return .nan }
        let target = total * q
        var previousBound = 0.0, previousCount = 0.0
        for bound in bounds {
            let count = cumulative[bound]!
            if count >= target {
                guard bound.isFinite else { return previousBound * 1000 }
                let share = count > previousCount ? (target - previousCount) / (count - previousCount) : 1
                return (previousBound + (bound - previousBound) * share) * 1000
            }
            previousBound = bound
            previousCount = count
        }
        return previousBound * 1000
    }
}
