#include "CPhoneNumber.h"

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

} // namespace

extern "C" int funnel_phone_parse(const char *input, const char *default_region, const char *language,
                                  char *e164, size_t e164_cap,
                                  int *number_type,
                                  char *region_code, size_t region_cap,
                                  char *description, size_t description_cap) {
    const PhoneNumberUtil *util = PhoneNumberUtil::GetInstance();
    PhoneNumber number;
    PhoneNumberUtil::ErrorType error = util->Parse(input, default_region, &number);
    if (error != PhoneNumberUtil::NO_PARSING_ERROR) return map_error(error);
    // The number's type is worked out once: IsValidNumber (type != UNKNOWN) and the geocoder's own validity
    // check would each run the region's type patterns again (ICU regexes, most of a parse's cost).
    const PhoneNumberUtil::PhoneNumberType type = util->GetNumberType(number);
    if (type == PhoneNumberUtil::UNKNOWN) return FUNNEL_PHONE_INVALID_FOR_REGION;

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
