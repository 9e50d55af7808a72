import FastText
import Foundation

/// Text in the widget's two languages.
public struct LocalizedText: Codable, Sendable, Equatable {
    public var zh: String
    public var en: String

    public init(zh: String, en: String) {
        self.zh = zh
        self.en = en
    }

    func text(_ locale: ChatLocale) -> String { locale == .zh ? zh : en }
}

/// The widget's languages: Chinese (the default) and English.
public enum ChatLocale: String, Codable, Sendable {
    case zh, en

    /// `zh`, `zh-CN`, `en-US`…; anything else is nil.
    init?(tag: String) {
        let lower = tag.lowercased()
        if lower.hasPrefix("zh") { self = .zh } else if lower.hasPrefix("en") { self = .en } else { return nil }
    }
}

/// What a question asks for; decides how the answer is checked and where it goes in the lead.
public enum QuestionKind: String, Codable, Sendable, CaseIterable {
    /// The visitor's name (encrypted in the lead, masked in summaries).
    case name
    /// A phone number, checked by the same normaliser as marketing-intake; a valid one makes the lead.
    case phone
    /// The course they are interested in (the lead's `course_interest`); `options` offers choices.
    case course
    /// Anything else (kept in the transcript summary).
    case text
}

/// One pre-chat question.
public struct BotQuestion: Codable, Sendable, Equatable {
    /// Unique within the flow (`[a-z0-9_]`, at most 32).
    public var id: String
    public var kind: QuestionKind
    public var prompt: LocalizedText
    /// Said when an answer is not valid (a phone that does not parse, an empty answer).
    public var retry: LocalizedText?
    /// A required question cannot be skipped.
    public var required: Bool
    /// Choices shown as buttons (the visitor may still type).
    public var options: [String]?
    /// Invalid answers accepted before the bot moves on (and an operator takes over).
    public var maxAttempts: Int?

    enum CodingKeys: String, CodingKey { case id, kind, prompt, retry, required, options, maxAttempts = "max_attempts" }

    public init(id: String, kind: QuestionKind, prompt: LocalizedText, retry: LocalizedText? = nil, required: Bool = false,
                options: [String]? = nil, maxAttempts: Int? = nil) {
        self.id = id
        self.kind = kind
        self.prompt = prompt
        self.retry = retry
        self.required = required
        self.options = options
        self.maxAttempts = maxAttempts
    }

    var attempts: Int { maxAttempts ?? 3 }
}

/// A site's pre-chat/bot flow, kept as data: a greeting, ordered questions, and what the bot says at the end.
public struct BotFlow: Codable, Sendable, Equatable {
    public var greeting: LocalizedText
    public var questions: [BotQuestion]
    public var completion: LocalizedText
    /// Said when a visitor skips an optional question.
    public var skipped: LocalizedText?

    public init(greeting: LocalizedText, questions: [BotQuestion], completion: LocalizedText, skipped: LocalizedText? = nil) {
        self.greeting = greeting
        self.questions = questions
        self.completion = completion
        self.skipped = skipped
    }

    /// The flow a new site gets: name → course interest → phone.
    public static let standard = BotFlow(
        greeting: LocalizedText(zh: "您好！我是课程顾问助手，几个问题帮您匹配老师。", en: "Hello! I'm the course assistant. A few questions and we'll match you with an advisor."),
        questions: [
            BotQuestion(id: "name", kind: .name, prompt: LocalizedText(zh: "请问怎么称呼您？", en: "What should we call you?")),
            BotQuestion(id: "course", kind: .course, prompt: LocalizedText(zh: "您想了解哪类课程？", en: "Which course are you interested in?"),
                        options: ["IELTS", "CPA", "Python"]),
            BotQuestion(id: "phone", kind: .phone, prompt: LocalizedText(zh: "请留下手机号，顾问会尽快联系您。", en: "Please leave your phone number and an advisor will call you."),
                        retry: LocalizedText(zh: "这个号码好像不对，请再输入一次（例如 138 0013 8000）。", en: "That number doesn't look right; please try again (e.g. 138 0013 8000)."),
                        required: true),
        ],
        completion: LocalizedText(zh: "谢谢！顾问会尽快联系您，您也可以在这里继续留言。", en: "Thank you! An advisor will contact you soon; you can keep writing here."),
        skipped: LocalizedText(zh: "好的，跳过。", en: "OK, skipped.")
    )

    static let defaultRetry = LocalizedText(zh: "没能识别您的回答，请再试一次。", en: "Sorry, I couldn't use that answer; please try again.")
    static let defaultSkipped = LocalizedText(zh: "好的。", en: "OK.")
    static let requiredRefusal = LocalizedText(zh: "这个问题需要回答才能继续。", en: "This question needs an answer before we continue.")
    static let handOver = LocalizedText(zh: "我先为您转接人工顾问。", en: "Let me pass you to an advisor.")

    /// Every problem with the flow, each with the field it concerns; empty when valid.
    public func violations() -> [(field: String, detail: String)] {
        var found: [(String, String)] = []
        func checkText(_ text: LocalizedText?, _ field: String, required: Bool = true) {
            guard let text else { return }
            for (lang, value) in [("zh", text.zh), ("en", text.en)] {
                let trimmed = value.trimmingSpacesAndNewlines
                if required && trimmed.isEmpty { found.append(("\(field).\(lang)", "must not be empty")) }
                if value.count > 500 { found.append(("\(field).\(lang)", "at most 500 characters")) }
                if value.contains("\u{0}") { found.append(("\(field).\(lang)", "must not contain NUL characters")) }
            }
        }
        checkText(greeting, "bot_flow.greeting")
        checkText(completion, "bot_flow.completion")
        checkText(skipped, "bot_flow.skipped")
        if questions.count > 20 { found.append(("bot_flow.questions", "at most 20 questions")) }
        var seen = Set<String>()
        for (i, q) in questions.enumerated() {
            let field = "bot_flow.questions[\(i)]"
            if q.id.isEmpty || q.id.count > 32 || !q.id.allSatisfy({ ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "_" }) {
                found.append(("\(field).id", "1 to 32 characters of a-z, 0-9 and _"))
            } else if !seen.insert(q.id).inserted {
                found.append(("\(field).id", "\(q.id) is used twice"))
            }
            checkText(q.prompt, "\(field).prompt")
            checkText(q.retry, "\(field).retry")
            if let options = q.options {
                if options.count > 20 { found.append(("\(field).options", "at most 20 options")) }
                if options.contains(where: { $0.trimmingSpaces.isEmpty || $0.count > 100 }) {
                    found.append(("\(field).options", "each option has 1 to 100 characters"))
                }
            }
            if let attempts = q.maxAttempts, !(1...10).contains(attempts) { found.append(("\(field).max_attempts", "must be 1 to 10")) }
        }
        if questions.filter({ $0.kind == .phone }).count > 1 { found.append(("bot_flow.questions", "at most one phone question")) }
        return found
    }
}
