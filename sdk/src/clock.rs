//! The kernel's clock (the one billing uses, so a test can move it).

/// Now, as an RFC 3339 instant in UTC (`"2026-11-24T06:16:50.123456Z"`).
pub fn now() -> String {
    crate::backend::clock_now()
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    crate::backend::clock_now_millis()
}
