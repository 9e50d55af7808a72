import Contracts
import CPhoneNumber
import FastText

/// A phone number that libphonenumber parsed and validated.
public struct PhoneNumber: Sendable, Hashable {
    /// E.164, e.g. `+8613800138000`.
    public let e164: String
    /// libphonenumber's number type, kebab-case (`mobile`, `fixed-line`, …).
    public let type: String
    /// ISO region code, e.g. `CN`.
    public let regionCode: String
    /// The offline geocoder's description in Chinese, e.g. `北京市` (empty when unknown).
    public let geo: String

    /// Why a phone number was refused.
    public struct Invalid: Error, CustomStringConvertible, Sendable, Equatable {
        public enum Reason: String, Sendable {
            case empty, tooLong = "too_long_input", invalidCountryCode = "invalid_country_code", notANumber = "not_a_number"
            case tooShort = "too_short", tooLongNumber = "too_long", invalidForRegion = "invalid_for_region"
        }

        public let reason: Reason
        public init(reason: Reason) { self.reason = reason }
        public var description: String {
            switch reason {
            case .empty: return "phone number is empty"
            case .tooLong: return "phone number input is longer than 64 characters"
            case .invalidCountryCode: return "phone number has an unknown country code"
            case .notANumber: return "phone number is not a number"
            case .tooShort: return "phone number is too short"
            case .tooLongNumber: return "phone number is too long"
            case .invalidForRegion: return "phone number is not a valid number for its region"
            }
        }
    }

    /// Parses `input` with `defaultRegion` for numbers written without a country code. Accepts the usual ways
    /// people write numbers (`+86 138 0013 8000`, `0086-13800138000`, `138-0013-8000`, full-width digits).
    public static func parse(_ input: String, defaultRegion: String = "CN") throws(Invalid) -> PhoneNumber {
        let trimmed = input.trimmingSpacesAndNewlines
        if trimmed.isEmpty { throw Invalid(reason: .empty) }
        if trimmed.count > 64 { throw Invalid(reason: .tooLong) }
        var e164 = [CChar](repeating: 0, count: 32)
        var region = [CChar](repeating: 0, count: 8)
        var geo = [CChar](repeating: 0, count: 256)
        var type: Int32 = 0
        let code = funnel_phone_parse(trimmed, defaultRegion, "zh", &e164, e164.count, &type, &region, region.count, &geo, geo.count)
        switch Int(code) {
        case Int(FUNNEL_PHONE_OK): break
        case Int(FUNNEL_PHONE_INVALID_COUNTRY_CODE): throw Invalid(reason: .invalidCountryCode)
        case Int(FUNNEL_PHONE_TOO_SHORT_AFTER_IDD), Int(FUNNEL_PHONE_TOO_SHORT_NSN): throw Invalid(reason: .tooShort)
        case Int(FUNNEL_PHONE_TOO_LONG_NSN): throw Invalid(reason: .tooLongNumber)
        case Int(FUNNEL_PHONE_INVALID_FOR_REGION): throw Invalid(reason: .invalidForRegion)
        default: throw Invalid(reason: .notANumber)
        }
        return PhoneNumber(e164: text(e164), type: typeName(type), regionCode: text(region), geo: text(geo))
    }

    /// The display mask: the first three and last four digits of the national number, e.g. `138****8000`.
    public var masked: String { Masking.phone(e164) }

    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func typeName(_ type: Int32) -> String {
        switch Int(type) {
        case Int(FUNNEL_PHONE_TYPE_FIXED_LINE): return "fixed-line"
        case Int(FUNNEL_PHONE_TYPE_MOBILE): return "mobile"
        case Int(FUNNEL_PHONE_TYPE_FIXED_LINE_OR_MOBILE): return "fixed-line-or-mobile"
        case Int(FUNNEL_PHONE_TYPE_TOLL_FREE): return "toll-free"
        case Int(FUNNEL_PHONE_TYPE_PREMIUM_RATE): return "premium-rate"
        case Int(FUNNEL_PHONE_TYPE_SHARED_COST): return "shared-cost"
        case Int(FUNNEL_PHONE_TYPE_VOIP): return "voip"
        case Int(FUNNEL_PHONE_TYPE_PERSONAL_NUMBER): return "personal-number"
        case Int(FUNNEL_PHONE_TYPE_PAGER): return "pager"
        case Int(FUNNEL_PHONE_TYPE_UAN): return "uan"
        case Int(FUNNEL_PHONE_TYPE_VOICEMAIL): return "voicemail"
        default: return "unknown"
        }
    }
}

extension PhoneNumber {
    /// The number's type, region and offline-geocoded place, as events carry them next to the encrypted number.
    public var info: Funnel_Common_V1_PhoneInfo {
        var info = Funnel_Common_V1_PhoneInfo()
        info.type = type
        info.regionCode = regionCode
        info.geo = geo
        return info
    }
}
