//! The real Paynow component in the real plugin host, pointed at a fake Paynow on loopback.
//!
//! The plugin's manifest declares `https://www.paynow.co.zw`; the fake listens on plain HTTP
//! on 127.0.0.1 and a random port. So the harness loads a copy of the manifest that declares
//! `http://www.paynow.co.zw:<port>`, points that name at the fake in the host's resolver,
//! and allows the loopback network in the plugin's section, as an admin would for a
//! private address. The sandbox is not loosened: the plugin still reaches only that origin.

use keel_app::gateway_payments::Gateways;
use keel_plugins::KEEL_PLUGIN_PAYNOW;
use keel_testkit::paynow::FakePaynow;
use keel_testkit::plugins::PluginHarness;

pub const USD_ID: u64 = 7175;
pub const USD_KEY: &str = "d4e1c8a2-5b7f-4c3e-9a10-6f2b8e7d9c31";
pub const ZWG_ID: u64 = 7176;
pub const ZWG_KEY: &str = "3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977";
/// The integrations the fake serves.
pub const INTEGRATIONS: [(u64, &str); 2] = [(USD_ID, USD_KEY), (ZWG_ID, ZWG_KEY)];
const MANIFEST_HOST: &str = "\"https://www.paynow.co.zw\"";

/// The Paynow gateway talking to `fake`, and the harness that must outlive it.
pub async fn paynow_gateway(fake: &FakePaynow) -> (PluginHarness, Gateways) {
    let manifest = KEEL_PLUGIN_PAYNOW.manifest().unwrap();
    assert!(
        manifest.contains(MANIFEST_HOST),
        "plugin.toml no longer declares {MANIFEST_HOST}"
    );
    let manifest = manifest.replace(
        MANIFEST_HOST,
        &format!("\"http://www.paynow.co.zw:{}\"", fake.port()),
    );
    let section = format!(
        "api_url = \"http://www.paynow.co.zw:{port}\"\n\
         usd_integration_id = {USD_ID}\nusd_integration_key = \"{USD_KEY}\"\n\
         zwg_integration_id = {ZWG_ID}\nzwg_integration_key = \"{ZWG_KEY}\"\n\
         auth_email = \"merchant@example.co.zw\"\n\
         allow_networks = [\"127.0.0.1/32\"]",
        port = fake.port()
    );
    let mut harness = PluginHarness::new().resolve("www.paynow.co.zw", fake.ip());
    let plugin = harness
        .load(KEEL_PLUGIN_PAYNOW.wasm().unwrap(), &manifest, &section)
        .await
        .unwrap();
    (harness, Gateways::from_plugins(&[plugin]))
}
