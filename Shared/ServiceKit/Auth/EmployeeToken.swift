import Foundation
import Hummingbird
import JWTKit

/// The role an employee's token carries. HR is the source of truth; a service that mirrors HR prefers its copy.
public enum EmployeeRole: String, Codable, Sendable, CaseIterable {
    /// Acts on their own records.
    case rep
    /// Acts on their org subtree.
    case lead
    /// Acts on everything.
    case admin
}

/// The claims of an employee's bearer JWT: `sub` (employee id), `role`, `exp`, optional `iat`.
public struct EmployeeClaims: JWTPayload, Equatable {
    public var sub: SubjectClaim
    public var role: EmployeeRole
    public var exp: ExpirationClaim
    public var iat: IssuedAtClaim?

    public init(employeeID: String, role: EmployeeRole, expires: Date, issued: Date? = nil) {
        self.sub = SubjectClaim(value: employeeID)
        self.role = role
        self.exp = ExpirationClaim(value: expires)
        self.iat = issued.map { IssuedAtClaim(value: $0) }
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        guard !sub.value.isEmpty else { throw JWTError.claimVerificationFailure(failedClaim: sub, reason: "empty subject") }
    }

    public var employeeID: String { sub.value }
}

/// Who made a request: the verified token's employee and role.
public struct EmployeePrincipal: Sendable, Equatable {
    public let employeeID: String
    public let role: EmployeeRole
    public init(employeeID: String, role: EmployeeRole) {
        self.employeeID = employeeID
        self.role = role
    }
}

/// Verifies employees' bearer JWTs (HS256 with the configured secret; jwt-kit does the cryptography) and turns
/// every failure into a 401 problem. The caller then checks the employee against its HR mirror, so a leaver's
/// token is refused at once whatever its expiry.
public struct EmployeeTokenVerifier: Sendable {
    private let keys: JWTKeyCollection

    public init(secret: [UInt8]) async {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.keys = keys
    }

    /// Signs claims (tests, tooling and the bench mint tokens with it).
    public func sign(_ claims: EmployeeClaims) async throws -> String {
        try await keys.sign(claims)
    }

    /// The verified principal of `request`, or a 401 problem saying what is wrong.
    public func principal(of request: Request) async throws -> EmployeePrincipal {
        guard let token = request.bearerToken else {
            throw Problem(.unauthorized, code: "missing_credentials", detail: "send Authorization: Bearer <employee JWT>", headers: [.wwwAuthenticate: "Bearer"])
        }
        return try await principal(token: token)
    }

    public func principal(token: String) async throws -> EmployeePrincipal {
        do {
            let claims = try await keys.verify(token, as: EmployeeClaims.self)
            return EmployeePrincipal(employeeID: claims.employeeID, role: claims.role)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw Problem(.unauthorized, code: "token_expired", detail: "the token has expired or its claims are not valid",
                          headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
        } catch {
            throw Problem(.unauthorized, code: "invalid_token", detail: "the token is not a valid HS256 JWT of this deployment",
                          headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
        }
    }
}
