//! The kernel's clock (the one billing uses, so a test can move it).

/// Now, as an RFC 3339 instant in UTC (`"2026-11-24T06:16:50.123456Z"`).
pub fn now() -> String {
    crate::backend::clock_now()
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    crate::backend::clock_now_millis()
}

/// Unix seconds as an RFC 3339 instant in UTC: `1767225600` is `"2026-01-01T00:00:00Z"`.
/// For providers that timestamp in Unix seconds (WhatsApp's webhooks, many others).
///
/// ```
/// assert_eq!(keel_sdk::clock::rfc3339(1_767_225_600), "2026-01-01T00:00:00Z");
/// assert_eq!(keel_sdk::clock::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
/// ```
pub fn rfc3339(seconds: i64) -> String {
    let (date, time) = civil(seconds);
    format!("{date}T{time}Z")
}

/// Unix milliseconds as an RFC 3339 instant in UTC with milliseconds:
/// `"2026-01-01T00:00:00.123Z"`.
pub fn rfc3339_millis(millis: i64) -> String {
    let (date, time) = civil(millis.div_euclid(1000));
    format!("{date}T{time}.{:03}Z", millis.rem_euclid(1000))
}

/// `YYYY-MM-DD` and `hh:mm:ss` of Unix `seconds` (Howard Hinnant's `civil_from_days`).
fn civil(seconds: i64) -> (String, String) {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_format_as_rfc3339_utc() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_767_225_600_000),
            "2026-01-01T00:00:00.000Z"
        );
        assert_eq!(rfc3339_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
    }
}
