//! The real Paynow component in the real plugin host, pointed at a fake Paynow on loopback
//! ([`keel_testkit::paynow::load_plugin`] says how, without loosening the sandbox).

use keel_app::gateway_payments::Gateways;
use keel_testkit::paynow::FakePaynow;
use keel_testkit::plugins::PluginHarness;

pub const USD_ID: u64 = 7175;
pub const USD_KEY: &str = "d4e1c8a2-5b7f-4c3e-9a10-6f2b8e7d9c31";
pub const ZWG_ID: u64 = 7176;
pub const ZWG_KEY: &str = "3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977";
/// The integrations the fake serves.
pub const INTEGRATIONS: [(u64, &str); 2] = [(USD_ID, USD_KEY), (ZWG_ID, ZWG_KEY)];

/// The Paynow gateway talking to `fake`, and the harness that must outlive it.
pub async fn paynow_gateway(fake: &FakePaynow) -> (PluginHarness, Gateways) {
    let (harness, plugin) = keel_testkit::paynow::load_plugin(
        fake,
        &[("usd", USD_ID, USD_KEY), ("zwg", ZWG_ID, ZWG_KEY)],
    )
    .await
    .unwrap();
    (harness, Gateways::from_plugins(&[plugin]))
}
