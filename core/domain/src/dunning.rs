//! Dunning: what happens to an unpaid invoice, and to the services it bills, day by day.
//!
//! A [`Policy`] is data: reminder days before the due date, overdue reminders after it, the
//! day of the late fee, of suspension, of termination and of the cancellation of the unpaid
//! invoice, and how long a payment still in flight holds suspension. [`Policy::plan`] turns
//! it into dated [`Step`]s for one due date; [`Policy::due`] says which of them a run on a
//! given day performs, given the steps already recorded.
//!
//! Day arithmetic: a step `n` days after the due date happens on `due + n` (the due date
//! itself is still on time, so `n ≥ 1`); a reminder `n` days before happens on `due − n`.
//! A run on day `d` performs every step dated `≤ d` not yet recorded, in [`Step`] order,
//! except that of several *reminders* owed at once (after downtime) only the latest is
//! sent; the older ones are recorded as superseded, never sent late.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest offset a step may have, in days.
pub const MAX_DAYS: u32 = 365;
/// At most this many reminders of each kind.
pub const MAX_REMINDERS: usize = 10;

/// One step of dunning. Reminders, overdue notices, the late fee and the cancellation act
/// on the invoice; suspension and termination act on each service it bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    /// A reminder `n` days before the due date.
    Reminder(u32),
    /// An overdue notice `n` days after the due date.
    Overdue(u32),
    LateFee,
    Suspend,
    Terminate,
    /// The unpaid invoice is cancelled (its issue entry reversed).
    CancelInvoice,
}

impl Step {
    /// The stable text stored with a recorded step: `reminder-7`, `overdue-1`, `late_fee`,
    /// `suspend`, `terminate`, `cancel_invoice`.
    pub fn key(self) -> String {
        match self {
            Step::Reminder(n) => format!("reminder-{n}"),
            Step::Overdue(n) => format!("overdue-{n}"),
            Step::LateFee => "late_fee".into(),
            Step::Suspend => "suspend".into(),
            Step::Terminate => "terminate".into(),
            Step::CancelInvoice => "cancel_invoice".into(),
        }
    }

    pub fn parse(text: &str) -> Option<Step> {
        let days = |t: &str| t.parse::<u32>().ok().filter(|n| (1..=MAX_DAYS).contains(n));
        if let Some(n) = text.strip_prefix("reminder-") {
            return days(n).map(Step::Reminder);
        }
        if let Some(n) = text.strip_prefix("overdue-") {
            return days(n).map(Step::Overdue);
        }
        match text {
            "late_fee" => Some(Step::LateFee),
            "suspend" => Some(Step::Suspend),
            "terminate" => Some(Step::Terminate),
            "cancel_invoice" => Some(Step::CancelInvoice),
            _ => None,
        }
    }

    /// Whether the step acts on each service of the invoice rather than on the invoice.
    pub fn per_service(self) -> bool {
        matches!(self, Step::Suspend | Step::Terminate)
    }

    /// Reminders and overdue notices: messages, superseded by a later one owed at once.
    pub fn is_reminder(self) -> bool {
        matches!(self, Step::Reminder(_) | Step::Overdue(_))
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// A dunning policy. Every field is optional in the sense that an empty list or `None`
/// means the step is not taken.
///
/// Read from JSON or TOML, a field left out takes the value of [`Policy::default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Reminders this many days before the due date.
    pub reminder_days_before: Vec<u32>,
    /// Overdue notices this many days after the due date.
    pub overdue_days: Vec<u32>,
    /// The (one) late fee, this many days after the due date.
    pub late_fee_days: Option<u32>,
    /// Services of the invoice are suspended this many days after the due date.
    pub suspend_days: Option<u32>,
    /// … and terminated this many days after it.
    pub terminate_days: Option<u32>,
    /// The invoice, still unpaid, is cancelled this many days after it.
    pub cancel_invoice_days: Option<u32>,
    /// A payment pending at a gateway holds suspension and termination at most this long
    /// after it started (then the payment counts as failed for dunning).
    pub payment_hold_hours: u32,
}

fn default_hold_hours() -> u32 {
    72
}

impl Default for Policy {
    /// Keel's default: a reminder a week before, overdue notices 1 and 7 days after,
    /// suspension after 14 days; no late fee, termination or cancellation unless set.
    fn default() -> Policy {
        Policy {
            reminder_days_before: vec![7],
            overdue_days: vec![1, 7],
            late_fee_days: None,
            suspend_days: Some(14),
            terminate_days: None,
            cancel_invoice_days: None,
            payment_hold_hours: default_hold_hours(),
        }
    }
}

/// Why a policy is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{field}: {value} days is out of range (1 to {MAX_DAYS})")]
    OutOfRange { field: &'static str, value: u32 },
    #[error("{field}: {value} is listed twice")]
    Duplicate { field: &'static str, value: u32 },
    #[error("{field}: at most {MAX_REMINDERS} reminders")]
    TooMany { field: &'static str },
    #[error("terminate_days ({terminate}) must come after suspend_days ({suspend})")]
    TerminateBeforeSuspend { suspend: u32, terminate: u32 },
    #[error("payment_hold_hours: {0} is out of range (1 to 720)")]
    Hold(u32),
}

impl PolicyError {
    pub fn code(&self) -> &'static str {
        "invalid_dunning_policy"
    }
}

impl Policy {
    /// Checks the ranges and the order of suspension and termination.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (field, list) in [
            ("reminder_days_before", &self.reminder_days_before),
            ("overdue_days", &self.overdue_days),
        ] {
            if list.len() > MAX_REMINDERS {
                return Err(PolicyError::TooMany { field });
            }
            let mut seen = Vec::new();
            for &n in list {
                range(field, n)?;
                if seen.contains(&n) {
                    return Err(PolicyError::Duplicate { field, value: n });
                }
                seen.push(n);
            }
        }
        for (field, v) in [
            ("late_fee_days", self.late_fee_days),
            ("suspend_days", self.suspend_days),
            ("terminate_days", self.terminate_days),
            ("cancel_invoice_days", self.cancel_invoice_days),
        ] {
            if let Some(n) = v {
                range(field, n)?;
            }
        }
        if let (Some(suspend), Some(terminate)) = (self.suspend_days, self.terminate_days)
            && terminate <= suspend
        {
            return Err(PolicyError::TerminateBeforeSuspend { suspend, terminate });
        }
        if !(1..=720).contains(&self.payment_hold_hours) {
            return Err(PolicyError::Hold(self.payment_hold_hours));
        }
        Ok(())
    }

    /// The most days before a due date a step of this policy happens (how far ahead a run
    /// must look for unpaid invoices).
    pub fn lead_days(&self) -> u32 {
        self.reminder_days_before.iter().copied().max().unwrap_or(0)
    }

    /// Every step of the policy for an invoice due on `due`, with its day, ordered by day
    /// and then by [`Step`] order.
    pub fn plan(&self, due: NaiveDate) -> Vec<(NaiveDate, Step)> {
        let after = |n: u32| due.checked_add_days(Days::new(u64::from(n)));
        let mut out: Vec<(NaiveDate, Step)> = Vec::new();
        for &n in &self.reminder_days_before {
            if let Some(d) = due.checked_sub_days(Days::new(u64::from(n))) {
                out.push((d, Step::Reminder(n)));
            }
        }
        for &n in &self.overdue_days {
            out.extend(after(n).map(|d| (d, Step::Overdue(n))));
        }
        for (v, step) in [
            (self.late_fee_days, Step::LateFee),
            (self.suspend_days, Step::Suspend),
            (self.terminate_days, Step::Terminate),
            (self.cancel_invoice_days, Step::CancelInvoice),
        ] {
            if let Some(n) = v {
                out.extend(after(n).map(|d| (d, step)));
            }
        }
        out.sort();
        out
    }

    /// What a run on `today` does for an invoice due on `due`, given the steps already
    /// recorded (`done`, performed or superseded): the steps to perform and the reminders
    /// superseded by a later one owed at the same time.
    pub fn due(&self, due: NaiveDate, today: NaiveDate, done: &[Step]) -> Owed {
        let mut owed = Owed::default();
        let open: Vec<(NaiveDate, Step)> = self
            .plan(due)
            .into_iter()
            .filter(|(d, s)| *d <= today && !done.contains(s))
            .collect();
        let last_reminder = open
            .iter()
            .rev()
            .find(|(_, s)| s.is_reminder())
            .map(|x| x.1);
        for (_, step) in open {
            if step.is_reminder() && Some(step) != last_reminder {
                owed.superseded.push(step);
            } else {
                owed.perform.push(step);
            }
        }
        owed
    }
}

fn range(field: &'static str, n: u32) -> Result<(), PolicyError> {
    if (1..=MAX_DAYS).contains(&n) {
        Ok(())
    } else {
        Err(PolicyError::OutOfRange { field, value: n })
    }
}

/// The outcome of [`Policy::due`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owed {
    pub perform: Vec<Step>,
    pub superseded: Vec<Step>,
}

/// Which policy applies: the service's own, else its client's, else its product's, else the
/// host's default. An invoice follows the policy of the first service it bills (an invoice
/// without services: its client's, else the default).
pub fn resolve<T: Copy>(service: Option<T>, client: Option<T>, product: Option<T>) -> Option<T> {
    service.or(client).or(product)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn policy() -> Policy {
        Policy {
            reminder_days_before: vec![7, 3],
            overdue_days: vec![1, 7],
            late_fee_days: Some(5),
            suspend_days: Some(10),
            terminate_days: Some(30),
            cancel_invoice_days: Some(45),
            payment_hold_hours: 48,
        }
    }

    #[test]
    fn the_plan_dates_every_step_from_the_due_date() {
        let plan = policy().plan(d("2027-03-01"));
        let expected = [
            ("2027-02-22", Step::Reminder(7)),
            ("2027-02-26", Step::Reminder(3)),
            ("2027-03-02", Step::Overdue(1)),
            ("2027-03-06", Step::LateFee),
            ("2027-03-08", Step::Overdue(7)),
            ("2027-03-11", Step::Suspend),
            ("2027-03-31", Step::Terminate),
            ("2027-04-15", Step::CancelInvoice),
        ];
        assert_eq!(
            plan,
            expected.map(|(day, s)| (d(day), s)).to_vec(),
            "February has 28 days in 2027"
        );
    }

    #[test]
    fn a_run_performs_what_is_owed_once() {
        let p = policy();
        let due = d("2027-03-01");
        // Table: (today, already recorded, performed, superseded).
        type Case<'a> = (&'a str, &'a [Step], &'a [Step], &'a [Step]);
        let cases: &[Case] = &[
            ("2027-02-21", &[], &[], &[]),
            ("2027-02-22", &[], &[Step::Reminder(7)], &[]),
            ("2027-02-23", &[Step::Reminder(7)], &[], &[]),
            (
                "2027-03-01",
                &[Step::Reminder(7), Step::Reminder(3)],
                &[],
                &[],
            ),
            // Down from the 20th to the 6th: one reminder (the latest), and the late fee.
            (
                "2027-03-06",
                &[],
                &[Step::Overdue(1), Step::LateFee],
                &[Step::Reminder(7), Step::Reminder(3)],
            ),
            (
                "2027-03-11",
                &[
                    Step::Reminder(7),
                    Step::Reminder(3),
                    Step::Overdue(1),
                    Step::LateFee,
                ],
                &[Step::Overdue(7), Step::Suspend],
                &[],
            ),
        ];
        for (today, done, perform, superseded) in cases {
            let owed = p.due(due, d(today), done);
            assert_eq!(owed.perform, perform.to_vec(), "on {today}");
            assert_eq!(owed.superseded, superseded.to_vec(), "on {today}");
        }
    }

    #[test]
    fn step_keys_round_trip() {
        for (_, step) in policy().plan(d("2027-01-31")) {
            assert_eq!(Step::parse(&step.key()), Some(step));
        }
        for bad in ["reminder-0", "reminder-x", "overdue-366", "suspended", ""] {
            assert_eq!(Step::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_policies_are_refused_with_the_field() {
        let cases = [
            (
                Policy {
                    reminder_days_before: vec![0],
                    ..policy()
                },
                "reminder_days_before: 0 days is out of range (1 to 365)",
            ),
            (
                Policy {
                    overdue_days: vec![3, 3],
                    ..policy()
                },
                "overdue_days: 3 is listed twice",
            ),
            (
                Policy {
                    suspend_days: Some(30),
                    terminate_days: Some(30),
                    ..policy()
                },
                "terminate_days (30) must come after suspend_days (30)",
            ),
            (
                Policy {
                    late_fee_days: Some(400),
                    ..policy()
                },
                "late_fee_days: 400 days is out of range (1 to 365)",
            ),
            (
                Policy {
                    payment_hold_hours: 0,
                    ..policy()
                },
                "payment_hold_hours: 0 is out of range (1 to 720)",
            ),
            (
                Policy {
                    overdue_days: (1..=11).collect(),
                    ..policy()
                },
                "overdue_days: at most 10 reminders",
            ),
        ];
        for (p, message) in cases {
            assert_eq!(p.validate().unwrap_err().to_string(), message);
        }
        policy().validate().unwrap();
        Policy::default().validate().unwrap();
        // Termination without suspension is allowed.
        Policy {
            suspend_days: None,
            terminate_days: Some(20),
            ..policy()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn the_service_overrides_the_client_which_overrides_the_product() {
        assert_eq!(resolve(Some(1), Some(2), Some(3)), Some(1));
        assert_eq!(resolve(None, Some(2), Some(3)), Some(2));
        assert_eq!(resolve(None, None, Some(3)), Some(3));
        assert_eq!(resolve::<i32>(None, None, None), None);
    }

    #[test]
    fn policies_read_from_json_with_defaults() {
        let p: Policy = serde_json::from_str(r#"{"overdue_days":[2],"suspend_days":5}"#).unwrap();
        assert_eq!(p.reminder_days_before, vec![7], "left out: the default");
        assert_eq!((p.overdue_days, p.suspend_days), (vec![2], Some(5)));
        let none: Policy =
            serde_json::from_str(r#"{"reminder_days_before":[],"suspend_days":null}"#).unwrap();
        assert_eq!(
            (none.reminder_days_before.len(), none.suspend_days),
            (0, None)
        );
        assert_eq!(p.payment_hold_hours, 72);
        assert!(serde_json::from_str::<Policy>(r#"{"suspend":5}"#).is_err());
        assert_eq!(Policy::default().lead_days(), 7);
    }
}
