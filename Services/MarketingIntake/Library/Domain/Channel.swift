/// Where a lead was won. The set is closed: an unknown channel is refused, not guessed.
public enum Channel: String, CaseIterable, Sendable, Codable {
    case sem, feed, seo
    case landingPage = "landing-page"
    case chat, referral, other
}
