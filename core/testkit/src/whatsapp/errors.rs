//! The Cloud API error codes the fake knows (PROVIDERS.md §3.2), each with the HTTP status,
//! title and `error_data.details` it answers with. Titles and details follow Meta's
//! error-code page where PROVIDERS.md or that page gives them; details written by the fake
//! are marked so below.

/// Invalid or expired access token (misconfigured). HTTP 401, no `error_data`.
pub const INVALID_TOKEN: u32 = 190;
/// Invalid parameter (a shape error). HTTP 400.
pub const INVALID_PARAMETER: u32 = 100;
/// Something went wrong. HTTP 500.
pub const UNKNOWN_ERROR: u32 = 131000;
/// Service unavailable: the fake's [`down`](super::FakeWhatsApp::down) answer. HTTP 503.
pub const SERVICE_UNAVAILABLE: u32 = 131016;
/// Message undeliverable (the number has no WhatsApp, …).
pub const UNDELIVERABLE: u32 = 131026;
/// Recipient phone number not in allowed list (test business numbers).
pub const NOT_IN_ALLOWED_LIST: u32 = 131030;
/// Re-engagement message: outside the 24-hour customer-service window.
pub const REENGAGEMENT: u32 = 131047;
/// Marketing message held back to maintain healthy ecosystem engagement.
pub const ECOSYSTEM_ENGAGEMENT: u32 = 131049;
/// Throughput rate limit hit.
pub const RATE_LIMIT: u32 = 130429;
/// (Business account, consumer account) pair rate limit hit.
pub const PAIR_RATE_LIMIT: u32 = 131056;
/// Template parameter count mismatch.
pub const TEMPLATE_PARAMETERS: u32 = 132000;
/// Template does not exist (in that language).
pub const TEMPLATE_MISSING: u32 = 132001;

/// What the fake answers for an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownError {
    pub code: u32,
    /// The HTTP status of a synchronous reply.
    pub http_status: u16,
    /// The title: `error.message` is `(#<code>) <title>` (190's is the title alone); a
    /// webhook's `errors[]` item carries it as both `title` and `message`.
    pub title: &'static str,
    /// `error.error_data.details` (absent for 190).
    pub details: &'static str,
}

impl KnownError {
    /// `error.message` of a synchronous reply.
    pub fn message(&self) -> String {
        if self.code == INVALID_TOKEN {
            self.title.to_owned()
        } else {
            format!("(#{}) {}", self.code, self.title)
        }
    }
}

/// Every code [`known`] answers for, in the order PROVIDERS.md §3.2 lists them.
pub const KNOWN_CODES: [u32; 12] = [
    INVALID_TOKEN,
    INVALID_PARAMETER,
    NOT_IN_ALLOWED_LIST,
    UNDELIVERABLE,
    REENGAGEMENT,
    ECOSYSTEM_ENGAGEMENT,
    RATE_LIMIT,
    PAIR_RATE_LIMIT,
    TEMPLATE_PARAMETERS,
    TEMPLATE_MISSING,
    UNKNOWN_ERROR,
    SERVICE_UNAVAILABLE,
];

/// The catalogue entry for `code`; an unknown code gets a generic entry (HTTP 400, title
/// `Scripted error`) from [`known_or_generic`].
pub fn known(code: u32) -> Option<KnownError> {
    let (http_status, title, details) = match code {
        INVALID_TOKEN => (
            401,
            "Invalid OAuth access token - Cannot parse access token",
            "",
        ),
        INVALID_PARAMETER => (400, "Invalid parameter", "Invalid parameter"),
        UNKNOWN_ERROR => (
            500,
            "Something went wrong",
            "Message failed to send due to an unknown error.",
        ),
        SERVICE_UNAVAILABLE => (
            503,
            "Service unavailable",
            "A service is temporarily unavailable. Please check the status page for more information.",
        ),
        UNDELIVERABLE => (
            400,
            "Message undeliverable",
            "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number.",
        ),
        NOT_IN_ALLOWED_LIST => (
            400,
            "Recipient phone number not in allowed list",
            "Recipient phone number not in allowed list: Add recipient phone number to recipient list and try again.",
        ),
        REENGAGEMENT => (
            400,
            "Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        ),
        ECOSYSTEM_ENGAGEMENT => (
            400,
            "This message was not delivered to maintain healthy ecosystem engagement.",
            "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
        ),
        RATE_LIMIT => (
            400,
            "Rate limit hit",
            "Cloud API message throughput has been reached.",
        ),
        PAIR_RATE_LIMIT => (
            400,
            "(Business Account, Consumer Account) pair rate limit hit",
            "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.",
        ),
        TEMPLATE_PARAMETERS => (
            400,
            "Number of parameters does not match the expected number of params",
            // The fake's own text; a template send that mismatches gets counted details.
            "body: number of localizable_params does not match the expected number of params",
        ),
        TEMPLATE_MISSING => (
            400,
            "Template name does not exist in the translation",
            "The template does not exist in the specified language or the template has not been approved.",
        ),
        _ => return None,
    };
    Some(KnownError {
        code,
        http_status,
        title,
        details,
    })
}

/// [`known`], or for any other code a generic entry the fake invents: HTTP 400,
/// `(#<code>) Scripted error`.
pub fn known_or_generic(code: u32) -> KnownError {
    known(code).unwrap_or(KnownError {
        code,
        http_status: 400,
        title: "Scripted error",
        details: "An error scripted in the fake WhatsApp; the fake has no text for this code.",
    })
}
