import FastText
import Foundation
import Hummingbird
import ServiceKit

/// Reading request bodies and parameters into problems with specific codes.
enum ChatJSON {
    static func decode<T: Decodable>(_ type: T.Type, from body: ByteBuffer) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: body))
        } catch DecodingError.keyNotFound(let key, _) {
            throw Problem(.unprocessableContent, code: "missing_field", detail: "\(key.stringValue) is required",
                          errors: [.init(field: key.stringValue, code: "missing_field", detail: "is required")])
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw Problem(.unprocessableContent, code: "invalid_type", detail: "\(field.isEmpty ? "the body" : field) has the wrong type",
                          errors: [.init(field: field, code: "invalid_type", detail: "has the wrong type")])
        } catch {
            throw Problem(.badRequest, code: "malformed_json", detail: "the body is not valid JSON")
        }
    }

    /// Trimmed text or nil when absent or empty; too long or holding NUL is a field error.
    static func optionalText(_ value: String?, field: String, max: Int, errors: inout [Problem.FieldError]) throws -> String? {
        guard let value else { return nil }
        let trimmed = value.trimmingSpacesAndNewlines
        if trimmed.isEmpty { return nil }
        if trimmed.contains("\u{0}") {
            errors.append(.init(field: field, code: "invalid_character", detail: "must not contain NUL characters"))
            return nil
        }
        if trimmed.count > max {
            errors.append(.init(field: field, code: "field_too_long", detail: "at most \(max) characters"))
            return nil
        }
        return trimmed
    }

    struct MessageBody: Decodable {
        var text: String?
        var skip: Bool?
    }

    /// A visitor's message (`{"text": "…"}`) or skip (`{"skip": true}`).
    static func visitorInput(_ body: ByteBuffer, maxCharacters: Int) throws -> VisitorInput {
        try visitorInput(decode(MessageBody.self, from: body), maxCharacters: maxCharacters)
    }

    static func visitorInput(_ message: MessageBody, maxCharacters: Int) throws -> VisitorInput {
        if message.skip == true {
            guard message.text == nil else { throw Problem(.unprocessableContent, code: "invalid_message", detail: "send text or skip, not both") }
            return .skip
        }
        return .text(try messageText(message.text, maxCharacters: maxCharacters))
    }

    /// Message text: present, not blank, within the limit, no NUL or other control characters but newlines and tabs.
    static func messageText(_ text: String?, maxCharacters: Int) throws -> String {
        guard let text else {
            throw Problem(.unprocessableContent, code: "missing_field", detail: "text is required (or skip: true)",
                          errors: [.init(field: "text", code: "missing_field", detail: "is required")])
        }
        let trimmed = text.trimmingSpacesAndNewlines
        guard !trimmed.isEmpty else {
            throw Problem(.unprocessableContent, code: "empty_message", detail: "text must not be blank", errors: [.init(field: "text", code: "empty_message", detail: "is blank")])
        }
        guard trimmed.count <= maxCharacters else {
            throw Problem(.unprocessableContent, code: "message_too_long", detail: "text has \(trimmed.count) characters; at most \(maxCharacters)",
                          errors: [.init(field: "text", code: "message_too_long", detail: "at most \(maxCharacters) characters")])
        }
        guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\n" && $0 != "\t" && $0 != "\r" }) else {
            throw Problem(.unprocessableContent, code: "invalid_character", detail: "text must not contain control characters",
                          errors: [.init(field: "text", code: "invalid_character", detail: "control characters are not allowed")])
        }
        return trimmed
    }

    /// An integer query parameter within `range`, or `default` when absent.
    static func intParameter(_ request: Request, _ name: String, range: ClosedRange<Int>, default value: Int) throws -> Int {
        guard let text = request.uri.queryParameters.get(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw Problem(.unprocessableContent, code: "invalid_parameter", detail: "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound)",
                          errors: [.init(field: name, code: "invalid_parameter", detail: "an integer in \(range.lowerBound)...\(range.upperBound)")])
        }
        return number
    }
}
