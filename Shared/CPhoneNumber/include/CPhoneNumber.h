// A C-callable shim over Google's libphonenumber (C++), so Swift can reach it without C++ interop.
#ifndef FUNNEL_CPHONENUMBER_H
#define FUNNEL_CPHONENUMBER_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Outcome codes of `funnel_phone_parse`.
enum {
    FUNNEL_PHONE_OK = 0,
    FUNNEL_PHONE_INVALID_COUNTRY_CODE = 1,
    FUNNEL_PHONE_NOT_A_NUMBER = 2,
    FUNNEL_PHONE_TOO_SHORT_AFTER_IDD = 3,
    FUNNEL_PHONE_TOO_SHORT_NSN = 4,
    FUNNEL_PHONE_TOO_LONG_NSN = 5,
    FUNNEL_PHONE_INVALID_FOR_REGION = 6,
    FUNNEL_PHONE_BUFFER_TOO_SMALL = 7,
};

/// Number types, mirroring libphonenumber's PhoneNumberType.
enum {
    FUNNEL_PHONE_TYPE_FIXED_LINE = 0,
    FUNNEL_PHONE_TYPE_MOBILE = 1,
    FUNNEL_PHONE_TYPE_FIXED_LINE_OR_MOBILE = 2,
    FUNNEL_PHONE_TYPE_TOLL_FREE = 3,
    FUNNEL_PHONE_TYPE_PREMIUM_RATE = 4,
    FUNNEL_PHONE_TYPE_SHARED_COST = 5,
    FUNNEL_PHONE_TYPE_VOIP = 6,
    FUNNEL_PHONE_TYPE_PERSONAL_NUMBER = 7,
    FUNNEL_PHONE_TYPE_PAGER = 8,
    FUNNEL_PHONE_TYPE_UAN = 9,
    FUNNEL_PHONE_TYPE_VOICEMAIL = 10,
    FUNNEL_PHONE_TYPE_UNKNOWN = 11,
};

/// Parses `input` (UTF-8) with `default_region` (e.g. "CN"), validates it and, on success, writes the E.164
/// form, the number type, the ISO region code and the offline geocoder's description (in `language`, e.g. "zh").
/// Thread-safe. Returns one of the FUNNEL_PHONE_* codes.
int funnel_phone_parse(const char *input, const char *default_region, const char *language,
                       char *e164, size_t e164_cap,
                       int *number_type,
                       char *region_code, size_t region_cap,
                       char *description, size_t description_cap);

#ifdef __cplusplus
}
#endif
#endif
