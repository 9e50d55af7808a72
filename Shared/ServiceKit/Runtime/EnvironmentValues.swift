import FastText
import Foundation
import HTTPTypes

/// Reads a service's own `FUNNEL_*` settings from an environment: blank counts as unset, and a bad value throws a
/// ``ConfigurationError`` naming the variable (never echoing the value).
public struct EnvironmentValues: Sendable {
    public let environment: [String: String]

    public init(_ environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// The trimmed value, or nil when unset or blank.
    public func text(_ name: String) -> String? {
        guard let value = environment[name]?.trimmingSpaces, !value.isEmpty else { return nil }
        return value
    }

    /// A number within `range`, or nil when unset.
    public func number(_ name: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let text = text(name) else { return nil }
        guard let value = Double(text), range.contains(value) else {
            throw ConfigurationError(variable: name, reason: "must be a number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// An HTTP header name (e.g. `X-Forwarded-For`), or nil when unset.
    public func headerName(_ name: String) throws -> HTTPField.Name? {
        guard let text = text(name) else { return nil }
        guard let field = HTTPField.Name(text) else { throw ConfigurationError(variable: name, reason: "not a header name") }
        return field
    }
}
