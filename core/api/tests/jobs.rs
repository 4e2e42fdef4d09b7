//! `/api/v1/jobs` and `/api/v1/schedules` over HTTP on both engines: listing, reading,
//! retrying and cancelling jobs with a clear refusal for each bad request, the schedules'
//! heartbeat (late and failing) in the API and on `/readyz`, and automation closed to
//! reseller keys.

mod common;

use chrono::{TimeZone, Utc};
use common::*;
use keel_app::{App, Clock, FixedClock};
use keel_jobs::{Schedule, Scheduler};
use keel_store::jobs::{self as store, NewJob};
use std::sync::Arc;

keel_testkit::store_test!(
    async fn staff_see_retry_and_cancel_jobs_and_every_refusal_has_a_code(t) {
        let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2027, 1, 1, 9, 0, 0).unwrap()));
        let app = App::with_clock(t.db.clone(), clock.clone());
        let api = Api::start_serving(t, keel_api::ApiConfig::default(), app).await;
        let mut tx = t.db.begin().await.unwrap();
        let waiting = store::enqueue(&mut tx, &NewJob::new("billing.run", serde_json::json!({ "as_of": "2027-01-01" }), clock.now() + chrono::Duration::hours(1)), clock.now()).await.unwrap().unwrap();
        let other = store::enqueue(&mut tx, &NewJob::new("billing.run", serde_json::json!({}), clock.now() + chrono::Duration::hours(2)), clock.now()).await.unwrap().unwrap();
        tx.commit().await.unwrap();

        let page = api.get("/api/v1/jobs?limit=1", &api.admin).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert_eq!(page.body["items"][0]["id"], other);
        assert_eq!(page.body["next_before"], other);
        let next = api.get(&format!("/api/v1/jobs?limit=1&before={other}"), &api.admin).await;
        assert_eq!(next.body["items"][0]["id"], waiting);
        let one = api.get(&format!("/api/v1/jobs/{waiting}"), &api.admin).await;
        assert_eq!((one.body["kind"].as_str(), one.body["state"].as_str()), (Some("billing.run"), Some("ready")));
        assert_eq!(one.body["payload"]["as_of"], "2027-01-01");

        let before = api.snapshot().await;
        api.get("/api/v1/jobs?state=stuck", &api.admin).await.assert_error(422, "invalid_status", Some("status"));
        api.post(&format!("/api/v1/jobs/{waiting}/retry"), &api.admin, &serde_json::json!({}), None).await.assert_error(409, "job_state", None);
        api.get("/api/v1/jobs/999999", &api.admin).await.assert_error(404, "not_found", None);
        api.get("/api/v1/jobs", &api.reseller_key).await.assert_error(403, "forbidden", None);
        assert_eq!(api.snapshot().await, before, "refusals change nothing");

        let cancelled = api.post(&format!("/api/v1/jobs/{waiting}/cancel"), &api.admin, &serde_json::json!({}), None).await;
        assert_eq!((cancelled.status, cancelled.body["state"].as_str()), (200, Some("cancelled")), "{}", cancelled.text);
        let retried = api.post(&format!("/api/v1/jobs/{waiting}/retry"), &api.admin, &serde_json::json!({}), None).await;
        assert_eq!((retried.status, retried.body["state"].as_str()), (200, Some("ready")), "{}", retried.text);
        api.stop().await;
    }
);

keel_testkit::store_test!(
    async fn a_schedule_nobody_fires_shows_late_in_the_api_and_on_readyz(t) {
        let clock = Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2027, 1, 1, 8, 0, 0).unwrap()));
        let app = App::with_clock(t.db.clone(), clock.clone());
        let scheduler = Scheduler::new(t.db.clone(), vec![Schedule::new("billing_run", "0 9 * * *", "UTC", "billing.run").unwrap()]);
        scheduler.tick(clock.now()).await.unwrap();
        let api = Api::start_serving(t, keel_api::ApiConfig::default(), app).await;

        let on_time = api.get("/api/v1/schedules", &api.admin).await;
        assert_eq!(on_time.status, 200, "{}", on_time.text);
        assert_eq!(on_time.body[0]["name"], "billing_run");
        assert_eq!(on_time.body[0]["next_slot"], "2027-01-01T09:00:00Z");
        assert_eq!((on_time.body[0]["late"].as_bool(), on_time.body[0]["failing"].as_bool()), (Some(false), Some(false)));

        // No scheduler ran at 09:00; ten minutes later the schedule is late.
        clock.set(Utc.with_ymd_and_hms(2027, 1, 1, 9, 10, 0).unwrap());
        let late = api.get("/api/v1/schedules", &api.admin).await;
        assert_eq!(late.body[0]["late"], true, "{}", late.text);
        let ready = api.send(api.request(reqwest::Method::GET, "/readyz")).await;
        assert_eq!(ready.status, 200, "a late schedule does not make the node unready");
        assert_eq!(ready.body["schedules"][0]["name"], "billing_run");
        assert_eq!(ready.body["schedules"][0]["late"], true);
        let metrics = api.send(api.request(reqwest::Method::GET, "/metrics")).await;
        assert!(metrics.text.contains("keel_schedule_late{schedule=\"billing_run\"} 1"), "{}", metrics.text);
        api.stop().await;
    }
);
