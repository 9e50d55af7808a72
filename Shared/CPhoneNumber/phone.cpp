#include "CPhoneNumber.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include <phonenumbers/geocoding/phonenumber_offline_geocoder.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>
#include <unicode/locid.h>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberOfflineGeocoder;
using i18n::phonenumbers::PhoneNumberUtil;

namespace {

// The geocoder loads its tables lazily and is documented as thread-safe once built.
PhoneNumberOfflineGeocoder *geocoder() {
    static std::once_flag once;
    static PhoneNumberOfflineGeocoder *instance = nullptr;
    std::call_once(once, [] { instance = new PhoneNumberOfflineGeocoder(); });
    return instance;
}

bool copy_out(const std::string &value, char *out, size_t cap) {
    if (out == nullptr || cap == 0) return true;
    if (value.size() + 1 > cap) return false;
    std::memcpy(out, value.c_str(), value.size() + 1);
    return true;
}

int map_error(PhoneNumberUtil::ErrorType error) {
    switch (error) {
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR: return FUNNEL_PHONE_INVALID_COUNTRY_CODE;
    case PhoneNumberUtil::NOT_A_NUMBER: return FUNNEL_PHONE_NOT_A_NUMBER;
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD: return FUNNEL_PHONE_TOO_SHORT_AFTER_IDD;
    case PhoneNumberUtil::TOO_SHORT_NSN: return FUNNEL_PHONE_TOO_SHORT_NSN;
    case PhoneNumberUtil::TOO_LONG_NSN: return FUNNEL_PHONE_TOO_LONG_NSN;
    default: return FUNNEL_PHONE_NOT_A_NUMBER;
    }
}

// The mainland mobile number in the shapes forms and ad platforms send most: 11 ASCII digits, optionally after
// +86 (any default region) or 0086 (the CN international prefix), with spaces or hyphens between digits. Parse's
// ICU regexes are about 70 % of a number's cost here (11 of 16 us), and for these shapes it yields exactly
// country code 86 with the 11 digits as the national number. Not for 11x, 12x and 179: there CN's carrier-selection
// prefixes (e.g. 17951 before a number) make Parse strip digits, so those go the whole way. Anything else
// (full-width digits, parentheses, a bare 86 prefix, other lengths) is left to Parse.
bool mainland_mobile_shape(const char *input, const char *default_region, uint64_t *national) {
    char digits[20];
    size_t count = 0;
    bool plus = false;
    for (const char *c = input; *c != '\0'; c++) {
        if (*c >= '0' && *c <= '9') {
            if (count == sizeof digits) return false;
            digits[count++] = *c;
        } else if (*c == '+' && c == input) {
            plus = true;
        } else if ((*c == ' ' || *c == '-') && count > 0 && c[1] >= '0' && c[1] <= '9') {
            continue;
        } else {
            return false;
        }
    }
    const bool cn = default_region != nullptr && std::strcmp(default_region, "CN") == 0;
    const char *n;
    if (plus && count == 13 && digits[0] == '8' && digits[1] == '6') {
        n = digits + 2;
    } else if (!plus && cn && count == 15 && std::memcmp(digits, "0086", 4) == 0) {
        n = digits + 4;
    } else if (!plus && cn && count == 11) {
        n = digits;
    } else {
        return false;
    }
    if (n[0] != '1' || n[1] < '3' || (n[1] == '7' && n[2] == '9')) return false;
    uint64_t value = 0;
    for (int i = 0; i < 11; i++) value = value * 10 + static_cast<uint64_t>(n[i] - '0');
    *national = value;
    return true;
}

} // namespace

extern "C" int funnel_phone_parse(const char *input, const char *default_region, const char *language,
                                  char *e164, size_t e164_cap,
                                  int *number_type,
                                  char *region_code, size_t region_cap,
                                  char *description, size_t description_cap) {
    const PhoneNumberUtil *util = PhoneNumberUtil::GetInstance();
    PhoneNumber number;
    // The number's type is worked out once: IsValidNumber (type != UNKNOWN) and the geocoder's own validity
    // check would each run the region's type patterns again (ICU regexes).
    PhoneNumberUtil::PhoneNumberType type = PhoneNumberUtil::UNKNOWN;
    uint64_t national = 0;
    if (mainland_mobile_shape(input, default_region, &national)) {
        number.set_country_code(86);
        number.set_national_number(national);
        type = util->GetNumberType(number);
    }
    // Not that shape, or not a valid number: Parse, so every refusal carries Parse's own reason.
    if (type == PhoneNumberUtil::UNKNOWN) {
        number.Clear();
        PhoneNumberUtil::ErrorType error = util->Parse(input, default_region, &number);
        if (error != PhoneNumberUtil::NO_PARSING_ERROR) return map_error(error);
        type = util->GetNumberType(number);
        if (type == PhoneNumberUtil::UNKNOWN) return FUNNEL_PHONE_INVALID_FOR_REGION;
    }

    std::string formatted;
    util->Format(number, PhoneNumberUtil::E164, &formatted);
    std::string region;
    util->GetRegionCodeForNumber(number, &region);
    const icu::Locale locale(language == nullptr ? "zh" : language);
    // For a geographical type GetDescriptionForNumber is GetDescriptionForValidNumber after the same checks;
    // the rare other types (toll free, …) get the country name, which only GetDescriptionForNumber gives.
    const std::string where = util->IsNumberGeographical(type, number.country_code())
        ? geocoder()->GetDescriptionForValidNumber(number, locale)
        : geocoder()->GetDescriptionForNumber(number, locale);

    if (number_type != nullptr) *number_type = static_cast<int>(type);
    if (!copy_out(formatted, e164, e164_cap) || !copy_out(region, region_code, region_cap) ||
        !copy_out(where, description, description_cap)) {
        return FUNNEL_PHONE_BUFFER_TOO_SMALL;
    }
    return FUNNEL_PHONE_OK;
}
