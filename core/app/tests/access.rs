//! Staff login and API-key creation through the use cases, on both engines.

use keel_app::access::{NewKey, NewStaff, create_key, create_staff, login};
use keel_app::{App, AppError, Ctx};
use keel_domain::access::{KeyScope, StaffRole};
use keel_domain::ids::ResellerId;
use keel_testkit::store_test;

fn staff(email: &str, password: &str) -> NewStaff {
    NewStaff {
        email: email.parse().unwrap(),
        name: "Rudo".into(),
        password: password.into(),
        role: StaffRole::Billing,
    }
}

store_test!(
    async fn staff_log_in_with_their_password_and_nobody_else_does(t) {
        let app = App::new(t.db.clone());
        let ctx = Ctx::system("test");
        create_staff(&app, &ctx, staff("rudo@keel.example", "correct horse battery")).await.unwrap();

        let found = login(&app, "RUDO@keel.example", "correct horse battery").await.unwrap();
        assert_eq!(found.email, "rudo@keel.example");
        for (email, password) in [("rudo@keel.example", "wrong horse battery"), ("nobody@keel.example", "correct horse battery")] {
            let refused = login(&app, email, password).await.unwrap_err();
            assert!(matches!(refused, AppError::Unauthorized { code: "invalid_credentials", .. }), "{refused:?}");
        }
    }
);

store_test!(
    async fn a_short_password_is_refused_and_creates_nobody(t) {
        let app = App::new(t.db.clone());
        let refused = create_staff(&app, &Ctx::system("test"), staff("rudo@keel.example", "short")).await.unwrap_err();
        assert!(matches!(refused, AppError::Invalid { code: "weak_password", .. }), "{refused:?}");
        assert!(keel_store::staff::list_staff(&t.db).await.unwrap().is_empty());
    }
);

store_test!(
    async fn a_key_for_an_unknown_reseller_is_not_found_and_creates_nothing(t) {
        let app = App::new(t.db.clone());
        let new = NewKey {
            name: "ghost".into(),
            scope: KeyScope::Reseller,
            reseller_id: Some(ResellerId(4242)),
            client_id: None,
            staff_id: None,
        };
        let refused = create_key(&app, &Ctx::system("test"), new).await.unwrap_err();
        assert!(matches!(refused, AppError::NotFound { what: "reseller" }), "{refused:?}");
        assert!(keel_store::staff::list_api_keys(&t.db).await.unwrap().is_empty());
    }
);
