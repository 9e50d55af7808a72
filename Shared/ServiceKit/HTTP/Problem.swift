import FastText
import Foundation
import Hummingbird
import Postgres

/// An RFC 9457 problem: the body of every 4xx/5xx, as `application/problem+json`.
public struct Problem: Error, HTTPResponseError, Sendable, CustomStringConvertible {
    /// One invalid field.
    public struct FieldError: Codable, Sendable, Equatable {
        public let field: String
        public let code: String
        public let detail: String
        public init(field: String, code: String, detail: String) {
            self.field = field
            self.code = code
            self.detail = detail
        }
    }

    public let status: HTTPResponse.Status
    /// A stable machine-readable code, also the tail of `type` (e.g. `invalid_phone`).
    public let code: String
    public let title: String
    public let detail: String
    public let errors: [FieldError]
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, title: String? = nil, detail: String, errors: [FieldError] = [], headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.title = title ?? status.reasonPhrase
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code): \(detail)" }

    struct Body: Encodable {
        let type: String
        let title: String
        let status: Int
        let detail: String
        let code: String
        let instance: String
        let errors: [FieldError]?
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = Body(type: "https://funnel.dev/problems/\(code.replacingOccurrences(of: "_", with: "-"))", title: title,
                        status: Int(status.code), detail: detail, code: code, instance: request.uri.path,
                        errors: errors.isEmpty ? nil : errors)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var fields = headers
        fields[.contentType] = "application/problem+json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(body))))
    }
}

/// Turns every error that escapes a handler into a problem+json response: Hummingbird's own errors keep their
/// status (404, 405, 413…); anything unexpected becomes a 500 whose body reveals nothing internal.
public struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            throw problem
        } catch let error as HTTPError {
            throw Problem(error.status, code: Self.code(for: error.status), detail: error.body ?? error.status.reasonPhrase, headers: error.headers)
        } catch let error as any HTTPResponseError {
            throw Problem(error.status, code: Self.code(for: error.status), detail: error.status.reasonPhrase)
        } catch let error as PostgresError where error.sqlState == "22021" || error.sqlState == "22P05" {
            // Text PostgreSQL cannot store (a NUL character) that a route did not check itself: the client's input.
            throw Problem(.unprocessableContent, code: "invalid_character", detail: "text may not contain NUL characters")
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: type(of: error)))", "path": "\(request.uri.path)"])
            throw Problem(.internalServerError, code: "internal_error", detail: "the server could not complete the request; it has been logged")
        }
    }

    static func code(for status: HTTPResponse.Status) -> String {
        switch status {
        case .notFound: return "not_found"
        case .methodNotAllowed: return "method_not_allowed"
        case .contentTooLarge: return "body_too_large"
        case .badRequest: return "bad_request"
        case .unauthorized: return "unauthorized"
        case .unsupportedMediaType: return "unsupported_media_type"
        default: return "http_\(status.code)"
        }
    }
}

extension Request {
    /// Collects the body up to `limit` bytes; a larger one is a 413 problem.
    public mutating func collectBody(limit: Int) async throws -> ByteBuffer {
        do {
            return try await collectBody(upTo: limit)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw Problem(.contentTooLarge, code: "body_too_large", detail: "request body exceeds \(limit) bytes")
        }
    }

    /// The bearer token of the `Authorization` header.
    public var bearerToken: String? {
        guard let header = headers[.authorization] else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return String(parts[1]).trimmingSpaces
    }

    /// Whether a presented token equals the expected one, compared in constant time (over their SHA-256, so the
    /// length does not leak either).
    public static func tokensMatch(_ given: String, _ expected: String) -> Bool {
        HMACSHA256.equal(SHA256Digest.hash(Array(given.utf8)), SHA256Digest.hash(Array(expected.utf8)))
    }

    /// Requires `Authorization: Bearer <token>` equal to `token` (compared in constant time).
    public func requireAdmin(token: String) throws {
        guard let given = bearerToken else {
            throw Problem(.unauthorized, code: "missing_credentials", detail: "send Authorization: Bearer <admin token>", headers: [.wwwAuthenticate: "Bearer"])
        }
        guard Self.tokensMatch(given, token) else {
            throw Problem(.unauthorized, code: "invalid_credentials", detail: "the admin token is not valid", headers: [.wwwAuthenticate: "Bearer"])
        }
    }
}
