//! Crash points: a test hook that stops the process at a named point of the payment path, so
//! a test can kill it there with SIGKILL from outside (`core/cli/tests/payment_crash.rs`).
//!
//! `KEEL_CRASH_POINT=<point>[@<reference prefix>]`, read once (`keel serve` reads it at
//! start-up; elsewhere the first point reached does):
//! when the process reaches `<point>` for a payment whose reference starts with the prefix
//! (any payment without one), it prints
//! `KEEL_CRASH_POINT reached: <point> <reference>` to stderr and the task waits forever; the
//! rest of the process keeps serving. Unset (always, outside such tests) a point costs one
//! initialised `OnceLock` read and a comparison.
//!
//! The points, in the order a provider's status update meets them:
//! - `after-verify`: the plugin verified the callback;
//! - `after-poll`: the provider confirmed it by a poll;
//! - `in-apply`: inside the apply transaction, the entry posted, before the commit;
//! - `after-commit`: the payment committed;
//! - `before-reply`: in keel-api, the hook's answer not yet sent.
//!
//! And one on the notification path (`core/cli/tests/notifier_crash.rs`), where the reference
//! is the notification's (`keel-notification-{id}`):
//! - `after-notifier-send`: a notifier plugin sent the message, its provider id not yet
//!   recorded.

use std::fmt;
use std::sync::OnceLock;

/// The environment variable naming the point.
pub const VARIABLE: &str = "KEEL_CRASH_POINT";

/// A place on the payment path where a test may stop the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    AfterVerify,
    AfterPoll,
    InApply,
    AfterCommit,
    BeforeReply,
    AfterNotifierSend,
}

impl Point {
    /// The points of the payment path, in the order a status update meets them.
    pub const PAYMENT: [Point; 5] = [
        Point::AfterVerify,
        Point::AfterPoll,
        Point::InApply,
        Point::AfterCommit,
        Point::BeforeReply,
    ];

    pub const ALL: [Point; 6] = [
        Point::AfterVerify,
        Point::AfterPoll,
        Point::InApply,
        Point::AfterCommit,
        Point::BeforeReply,
        Point::AfterNotifierSend,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Point::AfterVerify => "after-verify",
            Point::AfterPoll => "after-poll",
            Point::InApply => "in-apply",
            Point::AfterCommit => "after-commit",
            Point::BeforeReply => "before-reply",
            Point::AfterNotifierSend => "after-notifier-send",
        }
    }

    pub fn parse(name: &str) -> Option<Point> {
        Point::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the variable armed: a point and an optional reference prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Armed {
    point: Point,
    prefix: String,
}

fn parse(value: &str) -> Option<Armed> {
    let (name, prefix) = value.split_once('@').unwrap_or((value, ""));
    let point = Point::parse(name.trim());
    if point.is_none() {
        eprintln!("{VARIABLE}={value:?}: unknown point; ignored");
    }
    point.map(|point| Armed {
        point,
        prefix: prefix.trim().to_owned(),
    })
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var(VARIABLE).ok().as_deref().and_then(parse))
        .as_ref()
}

/// Reads the variable now (`keel serve` calls this at start-up) and says on stderr when a
/// point is armed.
pub fn read_at_start_up() {
    if let Some(armed) = armed() {
        eprintln!(
            "{VARIABLE}: armed at {} for references starting with {:?} (a test hook)",
            armed.point, armed.prefix
        );
    }
}

/// Stops here for good when `point` is armed for `reference`; returns at once otherwise.
pub async fn reached(point: Point, reference: &str) {
    let Some(armed) = armed() else { return };
    if armed.point != point || !reference.starts_with(&armed.prefix) {
        return;
    }
    eprintln!("{VARIABLE} reached: {point} {reference}");
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_is_named_with_an_optional_reference_prefix() {
        assert_eq!(
            parse("in-apply@2027-000001-"),
            Some(Armed {
                point: Point::InApply,
                prefix: "2027-000001-".into()
            })
        );
        assert_eq!(
            parse("before-reply"),
            Some(Armed {
                point: Point::BeforeReply,
                prefix: String::new()
            })
        );
        assert_eq!(parse("nowhere@x"), None);
        for p in Point::ALL {
            assert_eq!(Point::parse(p.name()), Some(p));
        }
    }
}
