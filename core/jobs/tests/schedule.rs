//! Schedules on both engines: slots in a time zone, one firing per slot however many
//! schedulers tick, missed slots fired once, and a changed expression starting afresh.

use chrono::{DateTime, TimeZone, Utc};
use keel_jobs::{Schedule, ScheduleError, Scheduler};
use keel_store::jobs::{self as store, JobState};
use keel_testkit::store_test;

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn daily_nine_harare() -> Schedule {
    Schedule::new("billing_run", "0 9 * * *", "Africa/Harare", "billing.run").unwrap()
}

#[test]
fn slots_are_computed_in_the_schedules_time_zone() {
    let s = daily_nine_harare();
    // 09:00 in Harare (UTC+2) is 07:00 UTC.
    assert_eq!(
        s.next_after(utc(2027, 3, 1, 6, 59)),
        Some(utc(2027, 3, 1, 7, 0))
    );
    assert_eq!(
        s.next_after(utc(2027, 3, 1, 7, 0)),
        Some(utc(2027, 3, 2, 7, 0)),
        "strictly after"
    );
    assert_eq!(
        s.key(utc(2027, 3, 1, 7, 0)),
        "schedule:billing_run:2027-03-01T07:00:00Z"
    );
    // New York moves its clocks on 2027-03-14: 09:00 local is 14:00 UTC before, 13:00 after.
    let ny = Schedule::new("ny", "0 9 * * *", "America/New_York", "x").unwrap();
    assert_eq!(
        ny.next_after(utc(2027, 3, 13, 0, 0)),
        Some(utc(2027, 3, 13, 14, 0))
    );
    assert_eq!(
        ny.next_after(utc(2027, 3, 14, 0, 0)),
        Some(utc(2027, 3, 14, 13, 0))
    );
    // 02:30 does not exist in New York on 2027-03-14 (02:00 jumps to 03:00).
    let gap = Schedule::new("gap", "30 2 * * *", "America/New_York", "x").unwrap();
    // A slot in the gap moves to the first instant after it: 03:00 EDT, 07:00 UTC.
    assert_eq!(
        gap.next_after(utc(2027, 3, 14, 5, 0)),
        Some(utc(2027, 3, 14, 7, 0))
    );
    // 01:30 happens twice in New York on 2027-11-07 (EDT, then EST): it fires once.
    let repeat = Schedule::new("repeat", "30 1 * * *", "America/New_York", "x").unwrap();
    assert_eq!(
        repeat.next_after(utc(2027, 11, 7, 4, 0)),
        Some(utc(2027, 11, 7, 5, 30))
    );
    assert_eq!(
        repeat.next_after(utc(2027, 11, 7, 5, 30)),
        Some(utc(2027, 11, 8, 6, 30))
    );
    // Every 15 minutes, with a seconds field.
    let q = Schedule::new("q", "0 */15 * * * *", "UTC", "x").unwrap();
    assert_eq!(
        q.next_after(utc(2027, 1, 1, 10, 7)),
        Some(utc(2027, 1, 1, 10, 15))
    );
}

#[test]
fn a_bad_schedule_is_refused_with_a_message_naming_it() {
    let err = Schedule::new("usage", "61 * * * *", "UTC", "x").unwrap_err();
    assert!(matches!(err, ScheduleError::Cron { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("schedule \"usage\": \"61 * * * *\" is not a cron expression"),
        "{err}"
    );
    let err = Schedule::new("usage", "0 9 * * *", "Harare", "x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "schedule \"usage\": \"Harare\" is not a time zone name (like \"UTC\" or \"Africa/Harare\")"
    );
}

store_test!(
    async fn each_slot_fires_once_however_many_schedulers_tick(t) {
        let schedulers: Vec<Scheduler> = (0..3).map(|_| Scheduler::new(t.db.clone(), vec![daily_nine_harare()])).collect();
        // First sight: nothing fires for the past; the next slot is stored.
        let start = utc(2027, 3, 1, 8, 0);
        assert!(schedulers[0].tick(start).await.unwrap().is_empty());
        let row = &store::schedules(&t.db).await.unwrap()[0];
        assert_eq!((row.schedule.next_slot, row.last_state), (utc(2027, 3, 2, 7, 0), None));

        // At the slot, three schedulers tick at once: one job.
        let at = utc(2027, 3, 2, 7, 0);
        let ticks = futures::future::join_all(schedulers.iter().map(|s| s.tick(at))).await;
        let fired: Vec<_> = ticks.into_iter().flat_map(|r| r.unwrap()).collect();
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!((fired[0].slot, fired[0].next_slot), (at, utc(2027, 3, 3, 7, 0)));
        let job = store::get(&t.db, fired[0].job.unwrap()).await.unwrap().unwrap();
        assert_eq!((job.kind.as_str(), job.state, job.run_at), ("billing.run", JobState::Ready, at));
        assert_eq!(job.payload, serde_json::json!({ "schedule": "billing_run", "slot": "2027-03-02T07:00:00Z" }));
        assert_eq!(job.unique_key.as_deref(), Some("schedule:billing_run:2027-03-02T07:00:00Z"));
        // Ticking again within the slot's minute fires nothing more.
        assert!(schedulers[1].tick(utc(2027, 3, 2, 7, 0) + chrono::Duration::seconds(30)).await.unwrap().is_empty());

        // Down for four days: the missed slots fire once, as the latest one due.
        let back = utc(2027, 3, 6, 12, 0);
        let fired = schedulers[2].tick(back).await.unwrap();
        assert_eq!(fired.len(), 1);
        assert_eq!((fired[0].slot, fired[0].next_slot), (utc(2027, 3, 3, 7, 0), utc(2027, 3, 7, 7, 0)));
        assert!(schedulers[0].tick(back).await.unwrap().is_empty());
        let jobs = store::list(&t.db, None, None, 10).await.unwrap();
        assert_eq!(jobs.len(), 2);

        // The status shows the last firing and what became of its job.
        let status = &store::schedules(&t.db).await.unwrap()[0];
        assert_eq!(status.schedule.last_slot, Some(utc(2027, 3, 3, 7, 0)));
        assert_eq!(status.schedule.last_fired_at, Some(back));
        assert_eq!(status.last_state, Some(JobState::Ready));
    }
);

store_test!(
    async fn a_changed_expression_starts_again_from_the_next_slot(t) {
        let before = Scheduler::new(t.db.clone(), vec![daily_nine_harare()]);
        before.tick(utc(2027, 3, 1, 8, 0)).await.unwrap();
        // The admin moves the run to 18:00 UTC; restarted at 2027-03-02 08:00 (after the old
        // slot of 07:00 passed unfired): nothing fires for the old expression.
        let evening = Schedule::new("billing_run", "0 18 * * *", "UTC", "billing.run").unwrap();
        let after = Scheduler::new(t.db.clone(), vec![evening]);
        assert!(after.tick(utc(2027, 3, 2, 8, 0)).await.unwrap().is_empty());
        let row = &store::schedules(&t.db).await.unwrap()[0];
        assert_eq!((row.schedule.cron.as_str(), row.schedule.timezone.as_str()), ("0 18 * * *", "UTC"));
        assert_eq!(row.schedule.next_slot, utc(2027, 3, 2, 18, 0));
        let fired = after.tick(utc(2027, 3, 2, 18, 0)).await.unwrap();
        assert_eq!(fired.len(), 1);
    }
);
