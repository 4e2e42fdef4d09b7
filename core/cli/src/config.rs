//! Keel's configuration: `keel.toml` plus `KEEL_*` environment overrides.
//!
//! Loading runs in four steps, and each one names where a bad value came from:
//!
//! 1. read the file (or start from an empty table when no file is given: all defaults);
//! 2. apply environment overrides: `KEEL_<SECTION>__<KEY>` sets `section.key`
//!    (double underscore between path parts, matched without regard to case), plus the
//!    documented short aliases `KEEL_DATABASE_URL` and `KEEL_LISTEN`;
//! 3. deserialize with `deny_unknown_fields` through `serde_path_to_error`, so a mistyped
//!    key stops start-up with its path (`server.listn`) and its source (`keel.toml` or
//!    the environment variable's name);
//! 4. validate what serde cannot express (socket address, URL scheme, ranges).
//!
//! Secrets never reach logs: the database URL is a [`Secret`], and plugin sections, whose
//! secret settings only the plugin's manifest knows, are redacted as a whole in `Debug`
//! and `Serialize` (booleans excepted). [`Config::redacted_toml`] is therefore safe to
//! print, and so is `{:?}` of any config value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a secret looks like wherever it is shown or serialized.
const REDACTED: &str = "***";

/// The source named in errors about values that came from neither a file nor the
/// environment (only reachable if a default were invalid).
const DEFAULTS_SOURCE: &str = "built-in defaults";

/// `KEEL_` variables that belong to the CLI or the test harness, not to config keys.
const NOT_CONFIG_VARIABLES: [&str; 5] = [
    "KEEL_CONFIG",
    "KEEL_LOG",
    // The payment path's crash points, a test hook (`keel_app::crash_points`).
    "KEEL_CRASH_POINT",
    // Read by keel-plugins' build script, so they may be set in a developer's shell.
    "KEEL_SKIP_PLUGIN_BUILD",
    "KEEL_NESTED_PLUGIN_BUILD",
];
/// `KEEL_BENCH_`: the benchmarks' own (keel-bench reads `KEEL_BENCH_PG_URL`).
const NOT_CONFIG_PREFIXES: [&str; 3] = ["KEEL_TEST_", "KEEL_PG_", "KEEL_BENCH_"];

/// Short names the CLI documents. The full `KEEL_<SECTION>__<KEY>` form wins when both
/// are set, because aliases are applied first.
const ALIASES: [(&str, [&str; 2]); 2] = [
    ("KEEL_DATABASE_URL", ["database", "url"]),
    ("KEEL_LISTEN", ["server", "listen"]),
];

const MIN_BODY_LIMIT_BYTES: usize = 1024;
const MAX_BODY_LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// A secret value: shown as `***` in `Debug` and `Display`, serialized as `***`.
/// Only [`Secret::expose`] gives the clear text, so every use is easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The clear text, for the one place that needs it (a connection, a request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(REDACTED, f)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// The whole configuration. `Debug` and `Serialize` redact secrets (see the module docs).
#[derive(Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub billing: BillingConfig,
    #[serde(default)]
    pub plugin_host: PluginHostConfig,
    #[serde(default)]
    pub jobs: JobsConfig,
    /// `[email]`: the SMTP server notifications go out through (off when not set).
    #[serde(default)]
    pub email: EmailConfig,
    /// `[notifications]`: where the host's message templates are, and how long skipped
    /// messages are kept.
    #[serde(default)]
    pub notifications: NotificationsConfig,
    /// `[dunning]`: the default dunning policy (reminders, overdue notices, late fee day,
    /// suspension, termination, cancellation); named policies live in the database.
    #[serde(default)]
    pub dunning: keel_domain::dunning::Policy,
    /// `[webhooks]`: where outgoing webhooks may go.
    #[serde(default)]
    pub webhooks: WebhooksConfig,
    /// `[payments]`: how payments through gateway plugins are confirmed and given up.
    #[serde(default)]
    pub payments: PaymentsConfig,
    /// `[schedules.<name>]`: when automation runs. The built-in schedules stay unless a
    /// section of the same name changes or disables them.
    #[serde(default)]
    pub schedules: Schedules,
    /// `[plugins.<id>]` sections, validated against each plugin's manifest when Keel
    /// starts (`keel plugin check` runs the same check). Serialized redacted.
    #[serde(default, serialize_with = "serialize_redacted_plugins")]
    pub plugins: BTreeMap<String, toml::Table>,
}

/// `[email]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://host:587?tls=required` (STARTTLS), `smtps://host:465`, or `smtp://host:25`
    /// (plain, for a relay on the same machine); `user:password@` before the host when the
    /// server wants them. A secret. Not set: email is off and messages are recorded as
    /// skipped.
    pub smtp_url: Option<Secret>,
    /// The sender, `Billing <billing@example.com>`.
    pub from: String,
}

/// `[webhooks]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Special networks (loopback, private, link-local, …) webhook endpoints may be in, as
    /// `10.0.0.0/8` or a single address. Empty by default: endpoints must be public
    /// addresses, so an admin key cannot aim Keel at the host's own network.
    pub allow_networks: Vec<String>,
}

/// `[payments]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// A payment started at a gateway whose status update has not come is asked about
    /// (polled) this many seconds after it started, and again every as many seconds, by the
    /// `payments.poll` job (schedule `payments_poll`).
    pub poll_after_seconds: u32,
    /// A payment still pending this many hours after it started is given up (`expired`),
    /// which ends its hold on dunning. A confirmation that comes later is still recorded.
    pub expire_after_hours: u32,
    /// Days a pay link works after it is made (1 to 365).
    pub link_days: u32,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            poll_after_seconds: 120,
            expire_after_hours: 24,
            link_days: keel_app::pay_links::DEFAULT_LINK_DAYS,
        }
    }
}

/// `[notifications]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// A folder holding `notifications/<language>/<event>.jinja` files that replace the
    /// built-in templates (docs/notifications.md).
    pub theme_dir: Option<PathBuf>,
    /// Skipped notifications (email off or not configured: never sent) are deleted this
    /// many days after they were written (the `cleanup` schedule), 1 to 3650; pending,
    /// sent and failed ones are kept.
    pub keep_skipped_days: u32,
    /// `[notifications.whatsapp]`: messages to clients who opted in, through a notifier
    /// plugin. Not set: the channel is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<PluginChannelConfig>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            theme_dir: None,
            keep_skipped_days: keel_app::automation::KEEP_SKIPPED_DAYS,
            whatsapp: None,
        }
    }
}

/// A channel served by a notifier plugin (`[notifications.whatsapp]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginChannelConfig {
    /// The enabled notifier plugin that sends the channel's messages (its `[plugins.<id>]`
    /// section must be present).
    pub plugin: String,
    /// Hours after a client's last message in which free-form text may be sent (1 to 168;
    /// WhatsApp's customer-service window is 24); outside them only an approved template.
    pub window_hours: u32,
    /// `[notifications.whatsapp.templates.<event>]`: per event, the provider-approved
    /// template sent outside the window.
    pub templates: BTreeMap<String, TemplateConfig>,
}

impl Default for PluginChannelConfig {
    fn default() -> Self {
        Self {
            plugin: keel_app::notify::WHATSAPP.to_owned(),
            window_hours: 24,
            templates: BTreeMap::new(),
        }
    }
}

impl PluginChannelConfig {
    /// The channel as the notification use cases take it (after [`Config::validate`]).
    fn to_app(&self) -> keel_app::notify::PluginChannel {
        keel_app::notify::PluginChannel {
            plugin: self.plugin.clone(),
            window_hours: Some(self.window_hours),
            templates: self
                .templates
                .iter()
                .map(|(event, t)| (event.clone(), t.to_app()))
                .collect(),
        }
    }
}

/// `[notifications.whatsapp.templates.<event>]`: an approved template and what fills it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// The template's name at the provider.
    pub name: String,
    /// Its language code (`en`, `en_US`).
    pub language: String,
    /// Its body parameters in order, each a value of the event by path
    /// (`client.first_name`, `invoice.number`, `invoice.balance`, `pay_url`).
    #[serde(default)]
    pub parameters: Vec<String>,
    /// Its header, when it has parameters: `{ type = "text", parameters = ["invoice.number"] }`
    /// or `{ type = "document" }` (the message's invoice as a PDF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<keel_app::notify::HeaderMapping>,
    /// Its dynamic buttons: `[{ index = 0, type = "url", parameter = "pay_token" }]`
    /// (`type` `url` or `quick_reply`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<keel_app::notify::ButtonMapping>,
}

impl TemplateConfig {
    fn to_app(&self) -> keel_app::notify::TemplateMapping {
        keel_app::notify::TemplateMapping {
            name: self.name.clone(),
            language: self.language.clone(),
            parameters: self.parameters.clone(),
            header: self.header.clone(),
            buttons: self.buttons.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite:…`, `postgres:…` or `postgresql:…`; a secret because it may carry a password.
    pub url: Secret,
    pub max_connections: u32,
    pub busy_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("sqlite://keel.db"),
            max_connections: 16,
            busy_timeout_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Socket address to bind, such as `127.0.0.1:8080`.
    pub listen: String,
    /// The URL people reach Keel at, when it differs from `listen` (a proxy in front).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    pub request_timeout_ms: u64,
    pub body_limit_bytes: usize,
    pub shutdown_grace_ms: u64,
    /// Requests per second one API key may make; 0 = no limit.
    pub rate_limit_per_second: u32,
    /// Requests one API key may make in a burst above the steady rate.
    pub rate_limit_burst: u32,
    /// How long an unfinished request under an Idempotency-Key owns the key before a retry
    /// may run it again (when the process handling it died).
    pub idempotency_lock_timeout_ms: u64,
    /// How long a stored `Idempotency-Key` answer is kept, in hours (1 to 8760); the daily
    /// `cleanup` schedule purges older ones, and a retry after that runs as a new request.
    pub idempotency_keep_hours: u32,
    /// When set, `/metrics` and `/readyz` need `Authorization: Bearer <token>` (else 401).
    /// A secret: printed as `***`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_token: Option<Secret>,
    /// The key pay links and the pay page's forms are signed with (at least 32 characters).
    /// A secret: printed as `***`. Not set: Keel makes one and keeps it in the database.
    /// Changing it voids every pay link sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_secret: Option<Secret>,
    /// A folder whose `web/<name>` files replace the built-in page templates (`base.html`,
    /// `keel.css`, `pay.html`, `pay_return.html`, `pay_error.html`), read at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theme_dir: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            public_url: None,
            request_timeout_ms: 30_000,
            body_limit_bytes: 1024 * 1024,
            shutdown_grace_ms: 10_000,
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
            idempotency_lock_timeout_ms: 60_000,
            idempotency_keep_hours: keel_app::automation::IDEMPOTENCY_KEEP_HOURS,
            metrics_token: None,
            link_secret: None,
            theme_dir: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter directive, such as `info,keel=debug`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info,keel=info".to_owned(),
        }
    }
}

/// Limits of the plugin sandbox and where plugins come from.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginHostConfig {
    /// Directories of installed plugins besides the built-in ones: each holds one folder
    /// per plugin with `plugin.toml` and `plugin.wasm`.
    pub dirs: Vec<PathBuf>,
    /// Where compiled plugins are cached (keyed by plugin, content hash and engine). Keel
    /// loads native code from here, so it must be a directory only Keel writes to. Empty =
    /// the user's cache directory (`$XDG_CACHE_HOME/keel/plugins`, else
    /// `~/.cache/keel/plugins`); `"off"` = no cache (every start compiles). A plugin's older
    /// builds are removed when a new one is cached, and entries unused for 30 days go.
    pub cache_dir: PathBuf,
    /// Plugin calls running at once (job workers plus API callbacks); the rest wait.
    pub max_concurrent_calls: u32,
    /// Memory one plugin call may use, all its memories together, in MiB.
    pub memory_limit_mb: u32,
    /// CPU time one plugin call may use, in milliseconds (counted in 10 ms ticks).
    pub cpu_budget_ms: u64,
    /// Wall-clock time one plugin call may take, outbound HTTP included, in milliseconds.
    pub call_timeout_ms: u64,
    /// For trying Keel against fake providers only: plugin requests to an origin here go to
    /// the loopback origin it maps to (`"https://www.paynow.co.zw" = "http://127.0.0.1:8089"`);
    /// the plugin and its grant still see the original URL. Also `keel serve --fake-origin`.
    /// Keel warns at start-up while any is set.
    pub fake_origins: BTreeMap<String, String>,
}

impl Default for PluginHostConfig {
    fn default() -> Self {
        Self {
            dirs: Vec::new(),
            cache_dir: PathBuf::new(),
            max_concurrent_calls: 16,
            memory_limit_mb: 64,
            cpu_budget_ms: 2_000,
            call_timeout_ms: 30_000,
            fake_origins: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingConfig {
    /// Invoice numbers: `{YYYY}`, `{YY}`, `{MM}`, `{DD}` and one `{SEQ}` or `{SEQ:n}`; the
    /// counter restarts when the date part changes.
    pub invoice_number_format: String,
    pub credit_note_number_format: String,
    pub seller_name: String,
    /// Address lines printed under the seller's name.
    pub seller_address: Vec<String>,
    pub seller_tax_id: Option<String>,
    pub seller_email: Option<String>,
    /// The currency the books are kept in (each invoice freezes its rate to it).
    pub default_currency: String,
    /// `exclusive`: prices are entered without tax; `inclusive`: with it.
    pub tax_mode: String,
    /// Renewal invoices are issued this many days before the due date (0 to 90).
    pub invoice_lead_days: u32,
    /// The first invoice of an order is due this many days after the order.
    pub order_due_days: u32,
    /// Services of one client due on the same day share one renewal invoice.
    pub group_renewals: bool,
    /// Pay new invoices from the client's wallet when it holds credit.
    pub wallet_auto_apply: bool,
    /// `wallet` or `next_invoice`: where the credit of a downgrade goes.
    pub downgrade_credit: String,
    /// Services per billing-run transaction (100 to 10000).
    pub batch_size: usize,
    /// A minijinja file that replaces the built-in invoice and credit-note PDF layout
    /// (see keel-pdf's docs for the layout language). Checked at start.
    pub pdf_template: Option<PathBuf>,
    /// The late fee as a percentage of the invoice total ("2.5") …
    pub late_fee_percent: Option<String>,
    /// … or a fixed amount per currency (`{ USD = "5.00", ZWG = "130.00" }`).
    pub late_fee_fixed: BTreeMap<String, String>,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            invoice_number_format: "INV-{YYYY}-{SEQ:5}".to_owned(),
            credit_note_number_format: "CN-{YYYY}-{SEQ:5}".to_owned(),
            seller_name: "Keel Demo Hosting".to_owned(),
            seller_address: Vec::new(),
            seller_tax_id: None,
            seller_email: None,
            default_currency: "USD".to_owned(),
            tax_mode: "exclusive".to_owned(),
            invoice_lead_days: 14,
            order_due_days: 0,
            group_renewals: true,
            wallet_auto_apply: true,
            downgrade_credit: "wallet".to_owned(),
            batch_size: 1000,
            pdf_template: None,
            late_fee_percent: None,
            late_fee_fixed: BTreeMap::new(),
        }
    }
}

impl BillingConfig {
    /// The late fee policy, when one is configured (validated by [`Config::validate`]).
    fn late_fee(&self) -> Option<keel_app::billing::LateFeeAmount> {
        use keel_app::billing::LateFeeAmount;
        if let Some(p) = &self.late_fee_percent {
            return Some(LateFeeAmount::Percent(p.parse().ok()?));
        }
        if self.late_fee_fixed.is_empty() {
            return None;
        }
        Some(LateFeeAmount::Fixed(
            self.late_fee_fixed
                .iter()
                .filter_map(|(code, amount)| {
                    let currency = keel_domain::Currency::from_code(code).ok()?;
                    keel_domain::Money::parse(amount, currency).ok()
                })
                .collect(),
        ))
    }

    /// The settings the billing use cases take (after [`Config::validate`] passed).
    pub fn to_app(&self) -> keel_app::billing::BillingConfig {
        let d = keel_app::billing::BillingConfig::default();
        keel_app::billing::BillingConfig {
            invoice_number: self
                .invoice_number_format
                .parse()
                .unwrap_or(d.invoice_number),
            credit_note_number: self
                .credit_note_number_format
                .parse()
                .unwrap_or(d.credit_note_number),
            tax_mode: match self.tax_mode.as_str() {
                "inclusive" => keel_domain::tax::TaxMode::Inclusive,
                _ => keel_domain::tax::TaxMode::Exclusive,
            },
            base_currency: keel_domain::Currency::from_code(&self.default_currency)
                .unwrap_or(d.base_currency),
            invoice_lead_days: self.invoice_lead_days,
            order_due_days: self.order_due_days,
            group_renewals: self.group_renewals,
            wallet_auto_apply: self.wallet_auto_apply,
            downgrade_credit: match self.downgrade_credit.as_str() {
                "next_invoice" => keel_app::billing::DowngradeCredit::NextInvoice,
                _ => keel_app::billing::DowngradeCredit::Wallet,
            },
            seller: keel_app::billing::Seller {
                name: self.seller_name.clone(),
                address: self.seller_address.clone(),
                tax_id: self.seller_tax_id.clone(),
                email: self.seller_email.clone(),
            },
            batch_size: self.batch_size,
            late_fee: self.late_fee(),
            dunning: keel_domain::dunning::Policy::default(), // set by Config::app_billing
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database", &self.database)
            .field("server", &self.server)
            .field("log", &self.log)
            .field("billing", &self.billing)
            .field("plugin_host", &self.plugin_host)
            .field("jobs", &self.jobs)
            .field("payments", &self.payments)
            .field("schedules", &self.schedules)
            .field("plugins", &redacted_plugins(&self.plugins))
            .finish()
    }
}

impl Config {
    /// `[plugin_host] fake_origins` as the plugin host takes them: each side an origin, each
    /// target on loopback.
    pub fn fake_origin_overrides(&self) -> Result<keel_plugin_host::OriginOverrides, String> {
        let mut overrides = keel_plugin_host::OriginOverrides::new();
        for (from, to) in &self.plugin_host.fake_origins {
            overrides.insert(from, to)?;
        }
        Ok(overrides)
    }

    /// The effective configuration as TOML, with every secret shown as `***`
    /// (for `keel config check`).
    pub fn redacted_toml(&self) -> String {
        // Serialize redacts by construction; the fallback only guards against a plugin
        // table TOML cannot re-emit, which parsing TOML cannot produce.
        toml::to_string(self)
            .unwrap_or_else(|error| format!("# cannot render the configuration: {error}\n"))
    }

    /// Checks serde cannot express. Returns the failing key's path and what is wrong;
    /// messages never echo the database URL.
    /// How notifications go out (after [`Config::validate`]).
    pub fn app_notifications(&self) -> keel_app::notify::Settings {
        keel_app::notify::Settings {
            smtp_url: self.email.smtp_url.as_ref().map(|s| s.expose().to_string()),
            from: self.email.from.clone(),
            theme_dir: self.notifications.theme_dir.clone(),
            channels: self
                .notifications
                .whatsapp
                .iter()
                .map(|w| (keel_app::notify::WHATSAPP.to_owned(), w.to_app()))
                .collect(),
        }
    }

    /// The plugin channels by name with their settings (`[notifications.whatsapp]`).
    pub fn plugin_channels(&self) -> Vec<(&'static str, &PluginChannelConfig)> {
        self.notifications
            .whatsapp
            .iter()
            .map(|w| (keel_app::notify::WHATSAPP, w))
            .collect()
    }

    /// What [`Config::validate`] cannot say with a fixed key: each plugin channel's plugin
    /// is enabled, its window is in range, and each template names an event clients are
    /// notified of, with a name, a language and parameters that event has. The kind of the
    /// plugin (a notifier) is known once the plugins are installed: `crate::notify` checks it
    /// where they are loaded.
    fn validate_channels(&self) -> Result<(), (String, String)> {
        for (channel, c) in self.plugin_channels() {
            let key = format!("notifications.{channel}");
            if !(1..=168).contains(&c.window_hours) {
                return Err((
                    format!("{key}.window_hours"),
                    format!("must be 1 to 168, found {}", c.window_hours),
                ));
            }
            if !self.plugins.contains_key(&c.plugin) {
                return Err((
                    format!("{key}.plugin"),
                    format!(
                        "the notifier plugin `{}` is not enabled: add a [plugins.{}] section with its settings (`keel plugin inspect {}` lists them)",
                        c.plugin, c.plugin, c.plugin
                    ),
                ));
            }
            for (event, t) in &c.templates {
                keel_app::notify::check_template(event, &t.to_app())
                    .map_err(|e| (format!("{key}.templates.{event}"), e))?;
            }
        }
        Ok(())
    }

    /// How payments through gateways behave: callback and return URLs on `[server]
    /// public_url` (else the listen address), the poll and expiry of `[payments]`.
    pub fn app_payments(&self) -> keel_app::gateway_payments::Settings {
        keel_app::gateway_payments::Settings {
            public_url: self
                .server
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", self.server.listen)),
            poll_after: std::time::Duration::from_secs(u64::from(
                self.payments.poll_after_seconds.max(1),
            )),
            expire_after: std::time::Duration::from_secs(
                u64::from(self.payments.expire_after_hours.max(1)) * 3600,
            ),
        }
    }

    /// How pay links are signed and how long they work.
    pub fn app_pay_links(&self) -> keel_app::pay_links::Settings {
        keel_app::pay_links::Settings {
            secret: self
                .server
                .link_secret
                .as_ref()
                .map(|s| s.expose().to_owned()),
            link_days: self.payments.link_days,
        }
    }

    /// Where webhooks may go (after [`Config::validate`], which parsed every network).
    pub fn app_webhooks(&self) -> keel_app::webhooks::Settings {
        keel_app::webhooks::Settings {
            allow_networks: self
                .webhooks
                .allow_networks
                .iter()
                .filter_map(|n| keel_domain::network::Network::parse(n).ok())
                .collect(),
        }
    }

    /// The settings the billing and dunning use cases take (after [`Config::validate`]).
    pub fn app_billing(&self) -> keel_app::billing::BillingConfig {
        keel_app::billing::BillingConfig {
            dunning: self.dunning.clone(),
            ..self.billing.to_app()
        }
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        let listen = &self.server.listen;
        if let Err(error) = listen.parse::<SocketAddr>() {
            return Err((
                "server.listen",
                format!("`{listen}` is not a socket address such as 127.0.0.1:8080 ({error})"),
            ));
        }
        let url = self.database.url.expose();
        if !["sqlite:", "postgres:", "postgresql:"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
        {
            let found = url
                .split_once(':')
                .map(|(scheme, _)| scheme)
                .filter(|scheme| looks_like_a_scheme(scheme))
                .map(|scheme| format!(", found `{scheme}:`"))
                .unwrap_or_default();
            return Err((
                "database.url",
                format!("must start with sqlite:, postgres: or postgresql:{found}"),
            ));
        }
        let ph = &self.plugin_host;
        if ph.max_concurrent_calls < 1 || ph.max_concurrent_calls > 1000 {
            return Err((
                "plugin_host.max_concurrent_calls",
                "must be 1 to 1000".to_owned(),
            ));
        }
        if !(8..=4096).contains(&ph.memory_limit_mb) {
            return Err((
                "plugin_host.memory_limit_mb",
                "must be 8 to 4096".to_owned(),
            ));
        }
        if ph.cpu_budget_ms < 10 {
            return Err((
                "plugin_host.cpu_budget_ms",
                "must be at least 10 (one tick)".to_owned(),
            ));
        }
        if ph.call_timeout_ms < 100 {
            return Err((
                "plugin_host.call_timeout_ms",
                "must be at least 100".to_owned(),
            ));
        }
        if let Err(e) = self.fake_origin_overrides() {
            return Err(("plugin_host.fake_origins", e));
        }
        if self.database.max_connections < 1 {
            return Err(("database.max_connections", "must be at least 1".to_owned()));
        }
        if self.server.request_timeout_ms < 1 {
            return Err((
                "server.request_timeout_ms",
                "must be at least 1 (a zero timeout would fail every request)".to_owned(),
            ));
        }
        let body_limit_bytes = self.server.body_limit_bytes;
        if !(MIN_BODY_LIMIT_BYTES..=MAX_BODY_LIMIT_BYTES).contains(&body_limit_bytes) {
            return Err((
                "server.body_limit_bytes",
                format!(
                    "must be between {MIN_BODY_LIMIT_BYTES} (1 KiB) and \
                     {MAX_BODY_LIMIT_BYTES} (64 MiB), found {body_limit_bytes}"
                ),
            ));
        }
        let b = &self.billing;
        for (key, format) in [
            ("billing.invoice_number_format", &b.invoice_number_format),
            (
                "billing.credit_note_number_format",
                &b.credit_note_number_format,
            ),
        ] {
            if let Err(error) = format.parse::<keel_domain::numbering::NumberFormat>() {
                return Err((key, format!("`{format}`: {error}")));
            }
        }
        let currency = &b.default_currency;
        if keel_domain::Currency::from_code(currency).is_err() {
            return Err((
                "billing.default_currency",
                format!("must be an ISO 4217 code such as USD or ZWG, found `{currency}`"),
            ));
        }
        if !["exclusive", "inclusive"].contains(&b.tax_mode.as_str()) {
            return Err((
                "billing.tax_mode",
                format!("must be exclusive or inclusive, found `{}`", b.tax_mode),
            ));
        }
        if !["wallet", "next_invoice"].contains(&b.downgrade_credit.as_str()) {
            return Err((
                "billing.downgrade_credit",
                format!(
                    "must be wallet or next_invoice, found `{}`",
                    b.downgrade_credit
                ),
            ));
        }
        if b.invoice_lead_days > 90 {
            return Err(("billing.invoice_lead_days", "must be 0 to 90".to_owned()));
        }
        if b.order_due_days > 365 {
            return Err(("billing.order_due_days", "must be 0 to 365".to_owned()));
        }
        let fee_amount_given = b.late_fee_percent.is_some() || !b.late_fee_fixed.is_empty();
        if b.late_fee_percent.is_some() && !b.late_fee_fixed.is_empty() {
            return Err((
                "billing.late_fee_percent",
                "set late_fee_percent or late_fee_fixed, not both".to_owned(),
            ));
        }
        if self.dunning.late_fee_days.is_some() && !fee_amount_given {
            return Err((
                "dunning.late_fee_days",
                "a late fee needs an amount: billing.late_fee_percent or billing.late_fee_fixed"
                    .to_owned(),
            ));
        }
        if let Err(e) = self.dunning.validate() {
            return Err(("dunning", e.to_string()));
        }
        if let Some(url) = &self.email.smtp_url {
            let url = url.expose();
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err((
                    "email.smtp_url",
                    "must start with smtp:// or smtps://".to_owned(),
                ));
            }
            let from = self.email.from.trim();
            if !from.contains('@') || from.contains(['\r', '\n']) {
                return Err((
                    "email.from",
                    "needs a sender address (`Billing <billing@example.com>`) when email.smtp_url is set".to_owned(),
                ));
            }
        }
        if let Some(token) = &self.server.metrics_token
            && (token.expose().trim().len() < 16 || token.expose().trim() != token.expose())
        {
            return Err((
                "server.metrics_token",
                "must be at least 16 characters, without surrounding spaces".to_owned(),
            ));
        }
        if let Some(secret) = &self.server.link_secret
            && (secret.expose().len() < keel_app::pay_links::MIN_SECRET_BYTES
                || secret.expose().trim() != secret.expose())
        {
            return Err((
                "server.link_secret",
                format!(
                    "must be at least {} characters, without surrounding spaces (`openssl rand -hex 32` makes one)",
                    keel_app::pay_links::MIN_SECRET_BYTES
                ),
            ));
        }
        if let Some(dir) = &self.server.theme_dir {
            if !dir.is_dir() {
                return Err((
                    "server.theme_dir",
                    format!("{} is not a folder", dir.display()),
                ));
            }
            keel_api::pages::Templates::load(Some(dir)).map_err(|e| ("server.theme_dir", e))?;
        }
        for network in &self.webhooks.allow_networks {
            keel_domain::network::Network::parse(network)
                .map_err(|e| ("webhooks.allow_networks", e))?;
        }
        if let Some(dir) = &self.notifications.theme_dir
            && !dir.is_dir()
        {
            return Err((
                "notifications.theme_dir",
                format!("{} is not a folder", dir.display()),
            ));
        }
        if let Some(p) = &b.late_fee_percent {
            match p.parse::<rust_decimal::Decimal>() {
                Ok(d)
                    if d > rust_decimal::Decimal::ZERO
                        && d <= rust_decimal::Decimal::ONE_HUNDRED => {}
                _ => {
                    return Err((
                        "billing.late_fee_percent",
                        format!("must be a percentage above 0 and at most 100, found `{p}`"),
                    ));
                }
            }
        }
        for (code, amount) in &b.late_fee_fixed {
            let Ok(currency) = keel_domain::Currency::from_code(code) else {
                return Err((
                    "billing.late_fee_fixed",
                    format!("`{code}` is not an ISO 4217 currency code"),
                ));
            };
            match keel_domain::Money::parse(amount, currency) {
                Ok(m) if m.is_positive() => {}
                _ => {
                    return Err((
                        "billing.late_fee_fixed",
                        format!("{code}: `{amount}` is not a positive amount in {code}"),
                    ));
                }
            }
        }
        if !(100..=10_000).contains(&b.batch_size) {
            return Err(("billing.batch_size", "must be 100 to 10000".to_owned()));
        }
        let j = &self.jobs;
        for (key, value, range) in [
            ("jobs.workers", j.workers, 1..=64),
            ("jobs.concurrency", j.concurrency, 1..=256),
            ("jobs.batch", j.batch, 1..=1000),
            ("jobs.lease_seconds", j.lease_seconds, 5..=86_400),
            ("jobs.poll_seconds", j.poll_seconds, 1..=3600),
            ("jobs.keep_days", j.keep_days, 1..=3650),
            (
                "notifications.keep_skipped_days",
                self.notifications.keep_skipped_days,
                1..=3650,
            ),
            (
                "server.idempotency_keep_hours",
                self.server.idempotency_keep_hours,
                1..=8760,
            ),
            ("payments.link_days", self.payments.link_days, 1..=365),
        ] {
            if !range.contains(&value) {
                return Err((
                    key,
                    format!(
                        "must be {} to {}, found {value}",
                        range.start(),
                        range.end()
                    ),
                ));
            }
        }
        self.schedules.build().map_err(|e| ("schedules", e))?;
        Ok(())
    }
}

/// `[jobs]`: the job workers `keel serve` runs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Run job workers and the scheduler in `keel serve` (turn off on API-only nodes).
    pub enabled: bool,
    /// Worker tasks, each claiming its own batches.
    pub workers: u32,
    /// Jobs each worker runs at once.
    pub concurrency: u32,
    /// Jobs a worker claims at once.
    pub batch: u32,
    /// How long a claimed job stays leased without a heartbeat (a killed worker's jobs run
    /// again after this).
    pub lease_seconds: u32,
    /// The longest an idle worker sleeps before looking again.
    pub poll_seconds: u32,
    /// Done and cancelled jobs are deleted this many days after they finished (the
    /// `cleanup` schedule); parked jobs stay until staff retry or cancel them.
    pub keep_days: u32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            workers: 2,
            concurrency: 4,
            batch: 100,
            lease_seconds: 60,
            poll_seconds: 5,
            keep_days: keel_app::automation::KEEP_DAYS,
        }
    }
}

impl JobsConfig {
    /// The settings of worker `n` of this process.
    pub fn worker(&self, n: u32) -> keel_jobs::WorkerConfig {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "keel".into());
        let mut w =
            keel_jobs::WorkerConfig::new("default", format!("{host}:{}:{n}", std::process::id()));
        w.concurrency = self.concurrency as usize;
        w.batch = self.batch;
        w.lease = std::time::Duration::from_secs(u64::from(self.lease_seconds));
        w.idle_poll = std::time::Duration::from_secs(u64::from(self.poll_seconds));
        w
    }
}

/// One `[schedules.<name>]` section.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// A cron expression: 5 fields (minute hour day-of-month month day-of-week), or 6 with
    /// seconds first.
    pub cron: String,
    /// The time zone the expression is read in (an IANA name).
    pub timezone: String,
    /// The job each firing enqueues.
    pub job: String,
    pub enabled: bool,
}

/// A `[schedules.<name>]` section as written: every key may be left out for a built-in
/// schedule (the built-in value stays); a new schedule needs `cron` and `job`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchedulePatch {
    cron: Option<String>,
    timezone: Option<String>,
    job: Option<String>,
    enabled: Option<bool>,
}

/// Every schedule: the built-in ones, changed or disabled by the file, plus its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Schedules(pub BTreeMap<String, ScheduleConfig>);

impl Default for Schedules {
    fn default() -> Self {
        Schedules(BTreeMap::from([
            (
                "billing_run".to_owned(),
                ScheduleConfig {
                    cron: "0 9 * * *".to_owned(),
                    timezone: "UTC".to_owned(),
                    job: "billing.run".to_owned(),
                    enabled: true,
                },
            ),
            (
                "cleanup".to_owned(),
                ScheduleConfig {
                    cron: "30 3 * * *".to_owned(),
                    timezone: "UTC".to_owned(),
                    job: "jobs.cleanup".to_owned(),
                    enabled: true,
                },
            ),
            (
                "payments_poll".to_owned(),
                ScheduleConfig {
                    cron: "*/5 * * * *".to_owned(),
                    timezone: "UTC".to_owned(),
                    job: "payments.poll".to_owned(),
                    enabled: true,
                },
            ),
            (
                "overdue".to_owned(),
                ScheduleConfig {
                    cron: "0 10 * * *".to_owned(),
                    timezone: "UTC".to_owned(),
                    job: "dunning.run".to_owned(),
                    enabled: true,
                },
            ),
        ]))
    }
}

impl<'de> Deserialize<'de> for Schedules {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let patches = BTreeMap::<String, SchedulePatch>::deserialize(deserializer)?;
        let mut all = Schedules::default();
        for (name, patch) in patches {
            let merged = match all.0.remove(&name) {
                Some(base) => ScheduleConfig {
                    cron: patch.cron.unwrap_or(base.cron),
                    timezone: patch.timezone.unwrap_or(base.timezone),
                    job: patch.job.unwrap_or(base.job),
                    enabled: patch.enabled.unwrap_or(base.enabled),
                },
                None => ScheduleConfig {
                    cron: patch.cron.ok_or_else(|| {
                        D::Error::custom(format!("schedule `{name}` needs `cron`"))
                    })?,
                    timezone: patch.timezone.unwrap_or_else(|| "UTC".to_owned()),
                    job: patch.job.ok_or_else(|| {
                        D::Error::custom(format!("schedule `{name}` needs `job`"))
                    })?,
                    enabled: patch.enabled.unwrap_or(true),
                },
            };
            all.0.insert(name, merged);
        }
        Ok(all)
    }
}

impl Schedules {
    /// The enabled schedules, checked: each expression parses, its time zone exists, and a
    /// handler is registered for its job.
    pub fn build(&self) -> Result<Vec<keel_jobs::Schedule>, String> {
        let handlers = keel_jobs::handlers();
        let mut out = Vec::new();
        for (name, s) in self.0.iter().filter(|(_, s)| s.enabled) {
            let schedule = keel_jobs::Schedule::new(name, &s.cron, &s.timezone, &s.job)
                .map_err(|e| e.to_string())?;
            if !handlers.contains_key(s.job.as_str()) {
                let mut known: Vec<&str> = handlers.keys().copied().collect();
                known.sort_unstable();
                return Err(format!(
                    "schedule \"{name}\": no job is called {:?} (known: {})",
                    s.job,
                    known.join(", ")
                ));
            }
            out.push(schedule);
        }
        Ok(out)
    }
}

/// A short run of scheme characters, so an error never echoes a password that happens
/// to precede a colon.
fn looks_like_a_scheme(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 16
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn serialize_redacted_plugins<S: Serializer>(
    plugins: &BTreeMap<String, toml::Table>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    redacted_plugins(plugins).serialize(serializer)
}

/// Plugin settings with every value but booleans replaced by `***`: until manifests say
/// which settings are secret, any string or number may be a gateway key.
fn redacted_plugins(plugins: &BTreeMap<String, toml::Table>) -> BTreeMap<String, toml::Table> {
    plugins
        .iter()
        .map(|(id, table)| (id.clone(), redacted_table(table)))
        .collect()
}

fn redacted_table(table: &toml::Table) -> toml::Table {
    table
        .iter()
        .map(|(key, value)| (key.clone(), redacted_value(value)))
        .collect()
}

fn redacted_value(value: &toml::Value) -> toml::Value {
    match value {
        toml::Value::Boolean(flag) => toml::Value::Boolean(*flag),
        toml::Value::Array(items) => toml::Value::Array(items.iter().map(redacted_value).collect()),
        toml::Value::Table(table) => toml::Value::Table(redacted_table(table)),
        _ => toml::Value::String(REDACTED.to_owned()),
    }
}

/// A command-line value that is not valid (exit code 2, like a configuration error).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The invoice PDF template: `billing.pdf_template` when set, else the built-in one.
pub fn pdf_template(config: &Config) -> anyhow::Result<keel_pdf::Template> {
    match &config.billing.pdf_template {
        None => Ok(keel_pdf::Template::builtin()),
        Some(path) => {
            // A template that cannot be used is a configuration error (exit 2), found at start.
            let text = std::fs::read_to_string(path).map_err(|e| {
                UsageError(format!(
                    "billing.pdf_template: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            Ok(
                keel_pdf::Template::from_source(&path.display().to_string(), &text)
                    .map_err(|e| UsageError(format!("billing.pdf_template: {e}")))?,
            )
        }
    }
}

/// Why the configuration could not be loaded. Every variant displays as one line that
/// names where the problem is.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file is not valid TOML.
    Syntax {
        source: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A key is unknown, has the wrong type, or holds a value Keel refuses.
    /// `path` is the dotted key path (`server.listen`); `source` is the file or the
    /// environment variable the value came from.
    Invalid {
        path: String,
        message: String,
        source: String,
    },
}

impl ConfigError {
    /// Configuration errors exit with status 2 by convention.
    pub fn exit_code(&self) -> i32 {
        2
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, error } => write!(
                f,
                "{}: cannot read the configuration file: {error}",
                path.display()
            ),
            Self::Syntax {
                source,
                line,
                column,
                message,
            } => write!(f, "{source}:{line}:{column}: {message}"),
            Self::Invalid {
                path,
                message,
                source,
            } if path.is_empty() => write!(f, "{source}: {message}"),
            Self::Invalid {
                path,
                message,
                source,
            } => write!(f, "{source}: {path}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { error, .. } => Some(error),
            Self::Syntax { .. } | Self::Invalid { .. } => None,
        }
    }
}

/// Loads the configuration from `path` (or defaults when `None`), applies overrides
/// from `env` (pass `std::env::vars().collect::<Vec<_>>()`), and validates the result.
#[cfg_attr(not(test), allow(dead_code))]
pub fn load(path: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
    load_with_flags(path, env, &[])
}

/// A command-line option that sets a config key (`--database`, `--listen`). Flags win over
/// the environment, and errors in their values name the flag.
pub struct Flag {
    pub name: &'static str,
    pub key: &'static [&'static str],
    pub value: String,
}

/// [`load`], then the command-line flags on top.
pub fn load_with_flags(
    path: Option<&Path>,
    env: &[(String, String)],
    flags: &[Flag],
) -> Result<Config, ConfigError> {
    let (table, source) = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                path: path.to_path_buf(),
                error,
            })?;
            let source = path.display().to_string();
            let mut table = text
                .parse::<toml::Table>()
                .map_err(|error| syntax_error(&text, &source, &error))?;
            resolve_paths(&mut table, path.parent().unwrap_or(Path::new("")));
            (table, source)
        }
        None => (toml::Table::new(), DEFAULTS_SOURCE.to_string()),
    };
    load_table(table, &source, env, flags)
}

/// The keys that name files or folders: `(section, key)`.
const PATH_KEYS: [(&str, &str); 5] = [
    ("plugin_host", "dirs"),
    ("plugin_host", "cache_dir"),
    ("server", "theme_dir"),
    ("notifications", "theme_dir"),
    ("billing", "pdf_template"),
];

/// Makes the file's relative paths relative to the file's folder `base`, so a keel.toml
/// means the same from wherever Keel is started. Empty values and `"off"` (the cache) keep
/// their meaning; values from the environment or flags stay relative to the working
/// directory, as a shell's paths are. The database URL is a URL, left as written.
fn resolve_paths(table: &mut toml::Table, base: &Path) {
    let resolve = |value: &mut toml::Value| {
        if let toml::Value::String(text) = value
            && !text.is_empty()
            && text != "off"
            && Path::new(text.as_str()).is_relative()
        {
            *text = base.join(text.as_str()).display().to_string();
        }
    };
    for (section, key) in PATH_KEYS {
        let Some(value) = table
            .get_mut(section)
            .and_then(toml::Value::as_table_mut)
            .and_then(|t| t.get_mut(key))
        else {
            continue;
        };
        match value {
            toml::Value::Array(items) => items.iter_mut().for_each(resolve),
            other => resolve(other),
        }
    }
}

/// [`load`] for text already in memory; `source` names it in errors.
#[cfg(test)]
fn load_str(text: &str, source: &str, env: &[(String, String)]) -> Result<Config, ConfigError> {
    let table = text
        .parse::<toml::Table>()
        .map_err(|error| syntax_error(text, source, &error))?;
    load_table(table, source, env, &[])
}

fn load_table(
    mut table: toml::Table,
    file_source: &str,
    env: &[(String, String)],
    flags: &[Flag],
) -> Result<Config, ConfigError> {
    let mut overrides = environment_overrides(env)?;
    overrides.extend(flags.iter().map(|f| Override {
        variable: f.name.to_owned(),
        key: f.key.iter().map(|k| (*k).to_owned()).collect(),
        raw: f.value.clone(),
        value: toml::Value::String(f.value.clone()),
    }));
    for found in &overrides {
        set_key(&mut table, found)?;
    }
    let config = deserialize(table, file_source, &mut overrides)?;
    config
        .validate()
        .map_err(|(path, message)| (path.to_owned(), message))
        .and_then(|()| config.validate_channels())
        .map_err(|(path, message)| {
            let key: Vec<String> = path.split('.').map(str::to_owned).collect();
            invalid(&key, &message, file_source, &overrides)
        })?;
    Ok(config)
}

/// One `KEEL_*` variable that sets a config key.
struct Override {
    variable: String,
    key: Vec<String>,
    raw: String,
    value: toml::Value,
}

impl Override {
    fn new(variable: &str, key: Vec<String>, raw: &str) -> Self {
        Self {
            variable: variable.to_owned(),
            key,
            raw: raw.to_owned(),
            value: env_value(raw),
        }
    }
}

/// Booleans and integers become TOML values (exactly as TOML spells them, so `007`
/// stays a string); everything else stays a string.
fn env_value(raw: &str) -> toml::Value {
    match toml::Value::deserialize(toml::de::ValueDeserializer::new(raw)) {
        Ok(value @ (toml::Value::Boolean(_) | toml::Value::Integer(_))) => value,
        _ => toml::Value::String(raw.to_owned()),
    }
}

/// The overrides in the order they are applied: aliases first, then full names, each
/// group sorted by variable name so the outcome does not depend on the caller's order.
fn environment_overrides(env: &[(String, String)]) -> Result<Vec<Override>, ConfigError> {
    let mut aliases = Vec::new();
    let mut full_names = Vec::new();
    for (variable, raw) in env {
        let upper = variable.to_ascii_uppercase();
        let Some(rest) = upper.strip_prefix("KEEL_") else {
            continue;
        };
        if NOT_CONFIG_VARIABLES.contains(&upper.as_str())
            || NOT_CONFIG_PREFIXES
                .iter()
                .any(|prefix| upper.starts_with(prefix))
        {
            continue;
        }
        if let Some((_, key)) = ALIASES.iter().find(|(alias, _)| *alias == upper) {
            let key = key.iter().map(|part| (*part).to_owned()).collect();
            aliases.push(Override::new(variable, key, raw));
            continue;
        }
        let key: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if key.iter().any(String::is_empty) {
            return Err(ConfigError::Invalid {
                path: key.join("."),
                message: "the variable name has an empty key part \
                          (use KEEL_<SECTION>__<KEY>, such as KEEL_SERVER__LISTEN)"
                    .to_owned(),
                source: variable.clone(),
            });
        }
        full_names.push(Override::new(variable, key, raw));
    }
    aliases.sort_by(|a, b| a.variable.cmp(&b.variable));
    full_names.sort_by(|a, b| a.variable.cmp(&b.variable));
    aliases.extend(full_names);
    Ok(aliases)
}

fn set_key(table: &mut toml::Table, found: &Override) -> Result<(), ConfigError> {
    let Some((last, parents)) = found.key.split_last() else {
        return Ok(());
    };
    let mut current = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = current
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(inner) => inner,
            other => {
                return Err(ConfigError::Invalid {
                    path: found.key[..=depth].join("."),
                    message: format!(
                        "holds a value of type {}, not a table, so `{last}` cannot be set inside it",
                        other.type_str()
                    ),
                    source: found.variable.clone(),
                });
            }
        };
    }
    current.insert(last.clone(), found.value.clone());
    Ok(())
}

/// Deserializes, naming the failing key's path. An environment value that became an
/// integer or boolean but landed on a string key (`KEEL_BILLING__SELLER_NAME=1984`) is
/// retried as the string it was written as; each retry turns one override back into a
/// string, so the loop ends.
fn deserialize(
    table: toml::Table,
    file_source: &str,
    overrides: &mut [Override],
) -> Result<Config, ConfigError> {
    let mut table = table;
    loop {
        let error = match serde_path_to_error::deserialize::<_, Config>(toml::Value::Table(
            table.clone(),
        )) {
            Ok(config) => return Ok(config),
            Err(error) => error,
        };
        let key = path_segments(error.path());
        let message = error.inner().message().to_owned();
        if message.starts_with("invalid type")
            && let Some(found) = overrides
                .iter_mut()
                .rev()
                .find(|found| key.starts_with(&found.key))
            && found.key == key
            && !found.value.is_str()
        {
            found.value = toml::Value::String(found.raw.clone());
            set_key(&mut table, found)?;
            continue;
        }
        return Err(invalid(&key, &message, file_source, overrides));
    }
}

fn path_segments(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .map(|segment| match segment {
            serde_path_to_error::Segment::Seq { index } => index.to_string(),
            serde_path_to_error::Segment::Map { key } => key.clone(),
            serde_path_to_error::Segment::Enum { variant } => variant.clone(),
            serde_path_to_error::Segment::Unknown => "?".to_owned(),
        })
        .collect()
}

/// An `Invalid` error whose source is the environment variable that set `key` (or a
/// table above it), else the file.
fn invalid(
    key: &[String],
    message: &str,
    file_source: &str,
    overrides: &[Override],
) -> ConfigError {
    let variable = overrides
        .iter()
        .rev()
        .find(|found| key.starts_with(&found.key))
        .map(|found| found.variable.as_str());
    let mut message = one_line(message);
    if let Some(variable) = variable
        && message.starts_with("unknown field")
        && !variable.contains("__")
    {
        message.push_str(" (nested keys take a double underscore, such as KEEL_SERVER__LISTEN)");
    }
    ConfigError::Invalid {
        path: key.join("."),
        message,
        source: variable.unwrap_or(file_source).to_owned(),
    }
}

fn syntax_error(text: &str, source: &str, error: &toml::de::Error) -> ConfigError {
    let offset = error.span().map_or(0, |span| span.start).min(text.len());
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, tail)| tail)
        .chars()
        .count()
        + 1;
    ConfigError::Syntax {
        source: source.to_owned(),
        line,
        column,
        message: one_line(error.message()),
    }
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD_URL: &str = "postgres://keel:hunter2@db/keel";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn load_text(text: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        load_str(text, "keel.toml", &env(pairs))
    }

    /// A table row: file text, environment, then the refusal expected: key path,
    /// source, and a part of the message.
    type Refused = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
        &'static str,
        &'static str,
    );

    fn assert_refused(cases: &[Refused]) {
        for (file, pairs, path, source, message) in cases {
            let (got_path, got_source, got_message) = invalid_parts(load_text(file, pairs));
            let row = format!("{file:?} {pairs:?}: {got_message}");
            assert_eq!(
                (got_path.as_str(), got_source.as_str()),
                (*path, *source),
                "{row}"
            );
            assert!(got_message.contains(message), "{row}");
            assert!(!got_message.contains('\n'), "{row}");
            assert!(!got_message.contains("hunter2"), "{row}");
        }
    }

    /// The (path, source, message) of an `Invalid` error; panics on anything else.
    fn invalid_parts(result: Result<Config, ConfigError>) -> (String, String, String) {
        match result {
            Err(ConfigError::Invalid {
                path,
                message,
                source,
            }) => (path, source, message),
            other => panic!("expected ConfigError::Invalid, got {other:?}"),
        }
    }

    #[test]
    fn no_file_and_no_environment_gives_the_documented_defaults() {
        let config = load(None, &[]).unwrap();

        assert_eq!(config, Config::default());
        assert_eq!(config.database.url.expose(), "sqlite://keel.db");
        assert_eq!(config.database.max_connections, 16);
        assert_eq!(config.database.busy_timeout_ms, 5_000);
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.server.public_url, None);
        assert_eq!(config.server.request_timeout_ms, 30_000);
        assert_eq!(config.server.body_limit_bytes, 1_048_576);
        assert_eq!(config.server.shutdown_grace_ms, 10_000);
        assert_eq!(config.log.format, LogFormat::Text);
        assert_eq!(config.log.filter, "info,keel=info");
        assert_eq!(config.billing.invoice_number_format, "INV-{YYYY}-{SEQ:5}");
        assert_eq!(config.billing.seller_name, "Keel Demo Hosting");
        assert_eq!(config.billing.default_currency, "USD");
        assert!(config.plugins.is_empty());
    }

    #[test]
    fn a_full_file_sets_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keel.toml");
        std::fs::write(
            &path,
            r#"
            [database]
            url = "postgresql://keel@localhost/keel"
            max_connections = 4
            busy_timeout_ms = 250

            [server]
            listen = "0.0.0.0:9000"
            public_url = "https://billing.example.com"
            request_timeout_ms = 5000
            body_limit_bytes = 2048
            shutdown_grace_ms = 1

            [log]
            format = "json"
            filter = "debug"

            [billing]
            invoice_number_format = "{SEQ}"
            seller_name = "Example Hosting"
            default_currency = "ZWG"

            [plugins.paynow]
            integration_id = 1234
            sandbox = true
            "#,
        )
        .unwrap();

        let config = load(Some(&path), &[]).unwrap();

        assert_eq!(
            config.database.url.expose(),
            "postgresql://keel@localhost/keel"
        );
        assert_eq!(config.database.max_connections, 4);
        assert_eq!(config.database.busy_timeout_ms, 250);
        assert_eq!(config.server.listen, "0.0.0.0:9000");
        assert_eq!(
            config.server.public_url.as_deref(),
            Some("https://billing.example.com")
        );
        assert_eq!(config.server.request_timeout_ms, 5000);
        assert_eq!(config.server.body_limit_bytes, 2048);
        assert_eq!(config.server.shutdown_grace_ms, 1);
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.log.filter, "debug");
        assert_eq!(config.billing.invoice_number_format, "{SEQ}");
        assert_eq!(config.billing.seller_name, "Example Hosting");
        assert_eq!(config.billing.default_currency, "ZWG");
        let paynow = &config.plugins["paynow"];
        assert_eq!(paynow["integration_id"], toml::Value::Integer(1234));
        assert_eq!(paynow["sandbox"], toml::Value::Boolean(true));
    }

    #[test]
    fn the_example_file_loads_and_documents_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/keel.toml");

        let config = load(Some(&path), &[]).unwrap();

        assert_eq!(config, Config::default());
    }

    /// Every key Keel reads is documented in examples/keel.toml: set, or commented out
    /// (`# key = …`) when it has no default, each under its section's header (`[section]` or
    /// `# [section]`). Maps whose keys are the user's (plugins, origins, amounts per currency,
    /// template events) are documented by example.
    #[test]
    fn the_example_file_documents_every_key() {
        let example = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/keel.toml"),
        )
        .unwrap();
        let lines: Vec<&str> = example
            .lines()
            .map(|l| l.trim().trim_start_matches('#').trim())
            .collect();
        // Every optional key set, so that serialization shows it.
        let mut config = Config::default();
        config.server.public_url = Some("https://billing.example.com".into());
        config.server.metrics_token = Some(Secret::new("t"));
        config.server.link_secret = Some(Secret::new("s"));
        config.server.theme_dir = Some("theme".into());
        config.billing.seller_tax_id = Some("VAT 1".into());
        config.billing.seller_email = Some("billing@example.com".into());
        config.billing.pdf_template = Some("invoice.jinja".into());
        config.billing.late_fee_percent = Some("5".into());
        config.email.smtp_url = Some(Secret::new("smtp://127.0.0.1:25"));
        config.notifications.theme_dir = Some("theme".into());
        config.notifications.whatsapp = Some(PluginChannelConfig::default());
        config.dunning.late_fee_days = Some(5);
        config.dunning.terminate_days = Some(45);
        config.dunning.cancel_invoice_days = Some(60);
        let table: toml::Table = toml::from_str(&config.redacted_toml()).unwrap();
        let user_maps = ["fake_origins", "late_fee_fixed", "templates", "plugins"];

        fn walk(
            path: &str,
            table: &toml::Table,
            user_maps: &[&str],
            missing: &mut Vec<String>,
            lines: &[&str],
        ) {
            // Inline maps (`key = { … }`) are checked as keys; the others by a section of theirs.
            const INLINE: [&str; 2] = ["fake_origins", "late_fee_fixed"];
            // A table holding only tables (`schedules`) needs no header of its own.
            let has_keys = table.values().any(|v| !v.is_table());
            if has_keys && !lines.contains(&format!("[{path}]").as_str()) {
                missing.push(format!("[{path}]"));
            }
            for (key, value) in table {
                let full = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match value {
                    toml::Value::Table(inner) if !user_maps.contains(&key.as_str()) => {
                        walk(&full, inner, user_maps, missing, lines);
                    }
                    _ if user_maps.contains(&key.as_str()) && !INLINE.contains(&key.as_str()) => {
                        if !lines.iter().any(|l| l.starts_with(&format!("[{full}."))) {
                            missing.push(format!("[{full}.…]"));
                        }
                    }
                    _ => {
                        if !lines.iter().any(|l| {
                            l.strip_prefix(key.as_str())
                                .is_some_and(|rest| rest.trim_start().starts_with('='))
                        }) {
                            missing.push(full);
                        }
                    }
                }
            }
        }
        let mut missing = Vec::new();
        walk("", &table, &user_maps, &mut missing, &lines);
        assert!(
            missing.is_empty(),
            "examples/keel.toml does not document: {missing:?}"
        );
    }

    #[test]
    fn relative_paths_in_a_file_are_taken_from_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("etc");
        std::fs::create_dir(&nested).unwrap();
        // What start-up checks is there, beside the file (not where the test runs).
        std::fs::create_dir(nested.join("theme")).unwrap();
        std::fs::write(nested.join("invoice.typ"), "= Invoice").unwrap();
        let path = nested.join("keel.toml");
        std::fs::write(
            &path,
            "[plugin_host]\ndirs = [\"plugins\", \"/opt/keel/plugins\"]\ncache_dir = \"cache\"\n\n\
             [server]\ntheme_dir = \"theme\"\n\n[billing]\npdf_template = \"invoice.typ\"\n",
        )
        .unwrap();

        let config = load(Some(&path), &[]).unwrap();
        assert_eq!(
            config.plugin_host.dirs,
            [nested.join("plugins"), PathBuf::from("/opt/keel/plugins")]
        );
        assert_eq!(config.plugin_host.cache_dir, nested.join("cache"));
        assert_eq!(config.server.theme_dir, Some(nested.join("theme")));
        assert_eq!(
            config.billing.pdf_template,
            Some(nested.join("invoice.typ"))
        );

        // From the environment, a path stays relative to where Keel runs; "off" stays "off".
        let env = [("KEEL_PLUGIN_HOST__CACHE_DIR".to_owned(), "here".to_owned())];
        assert_eq!(
            load(Some(&path), &env).unwrap().plugin_host.cache_dir,
            PathBuf::from("here")
        );
        std::fs::write(&path, "[plugin_host]\ncache_dir = \"off\"\n").unwrap();
        assert_eq!(
            load(Some(&path), &[]).unwrap().plugin_host.cache_dir,
            PathBuf::from("off")
        );
    }

    #[test]
    fn the_demo_against_the_fake_paynow_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo-paynow.toml");

        let config = load(Some(&path), &[]).unwrap();

        let origins = config.fake_origin_overrides().unwrap();
        assert_eq!(
            origins.pairs().collect::<Vec<_>>(),
            vec![("https://www.paynow.co.zw", "http://127.0.0.1:8091")]
        );
        assert_eq!(
            config.plugins["paynow"]["usd_integration_id"],
            toml::Value::Integer(1201)
        );
        assert_eq!(
            config.email.smtp_url.as_ref().map(Secret::expose),
            Some("smtp://127.0.0.1:2525")
        );
    }

    #[test]
    fn the_demo_against_the_fake_whatsapp_loads_with_its_templates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo-whatsapp.toml");

        let config = load(Some(&path), &[]).unwrap();

        let origins = config.fake_origin_overrides().unwrap();
        assert_eq!(
            origins.pairs().collect::<Vec<_>>(),
            vec![("https://graph.facebook.com", "http://127.0.0.1:8092")]
        );
        assert_eq!(
            config.plugins["whatsapp"]["phone_number_id"],
            toml::Value::String("106540352242922".to_owned())
        );
        let channel = &config.app_notifications().channels["whatsapp"];
        assert_eq!(
            (channel.plugin.as_str(), channel.window_hours),
            ("whatsapp", Some(24))
        );
        assert_eq!(
            channel.templates.keys().collect::<Vec<_>>(),
            ["invoice_created", "payment_reminder"]
        );
        assert_eq!(
            channel.templates["invoice_created"].header,
            Some(keel_app::notify::HeaderMapping::Document)
        );
    }

    #[test]
    fn every_example_configuration_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let names: Vec<_> = files
            .iter()
            .filter_map(|p| p.file_name()?.to_str())
            .collect();
        for name in ["keel.toml", "demo-paynow.toml", "demo-whatsapp.toml"] {
            assert!(names.contains(&name), "{name} is not in {names:?}");
        }
        for path in &files {
            if let Err(e) = load(Some(path), &[]) {
                panic!("{}: {e}", path.display());
            }
        }
    }

    #[test]
    fn schedules_keep_the_built_in_ones_unless_changed_or_disabled() {
        let config = load_text("", &[]).unwrap();
        let run = &config.schedules.0["billing_run"];
        assert_eq!(
            (
                run.cron.as_str(),
                run.timezone.as_str(),
                run.job.as_str(),
                run.enabled
            ),
            ("0 9 * * *", "UTC", "billing.run", true)
        );

        let config = load_text(
            "[schedules.billing_run]\ntimezone = \"Africa/Harare\"\n\n[schedules.nightly]\ncron = \"30 1 * * *\"\njob = \"billing.run\"",
            &[],
        )
        .unwrap();
        let run = &config.schedules.0["billing_run"];
        assert_eq!(
            (run.cron.as_str(), run.timezone.as_str()),
            ("0 9 * * *", "Africa/Harare")
        );
        let built = config.schedules.build().unwrap();
        assert_eq!(
            built.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            [
                "billing_run",
                "cleanup",
                "nightly",
                "overdue",
                "payments_poll"
            ]
        );
        assert_eq!(built[2].zone, chrono_tz::UTC);
        assert_eq!(
            (built[1].kind.as_str(), built[3].kind.as_str()),
            ("jobs.cleanup", "dunning.run")
        );

        let config = load_text("[schedules.billing_run]\nenabled = false", &[]).unwrap();
        let left: Vec<String> = config
            .schedules
            .build()
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(left, ["cleanup", "overdue", "payments_poll"]);
        let (path, _, message) =
            invalid_parts(load_text("[schedules.nightly]\njob = \"billing.run\"", &[]));
        assert_eq!(path, "schedules");
        assert!(
            message.contains("schedule `nightly` needs `cron`"),
            "{message}"
        );
    }

    #[test]
    fn unknown_keys_stop_loading_and_name_their_path_and_source() {
        let cases: &[Refused] = &[
            (
                "bogus = 1",
                &[],
                "bogus",
                "keel.toml",
                "unknown field `bogus`, expected one of `database`, `server`",
            ),
            (
                "[server]\nlistn = \"127.0.0.1:1\"",
                &[],
                "server.listn",
                "keel.toml",
                "unknown field `listn`, expected one of `listen`",
            ),
            (
                "[billing.extra]\nx = 1",
                &[],
                "billing.extra",
                "keel.toml",
                "unknown field `extra`",
            ),
            (
                "",
                &[("KEEL_SERVER__LISTN", "127.0.0.1:1")],
                "server.listn",
                "KEEL_SERVER__LISTN",
                "unknown field `listn`",
            ),
            (
                "",
                &[("KEEL_BOGUS", "1")],
                "bogus",
                "KEEL_BOGUS",
                "unknown field `bogus`",
            ),
            (
                "",
                &[("KEEL_SERVER_LISTEN", "127.0.0.1:1")],
                "server_listen",
                "KEEL_SERVER_LISTEN",
                "unknown field `server_listen`",
            ),
        ];
        assert_refused(cases);
    }

    #[test]
    fn an_unknown_key_displays_as_one_line_with_source_path_and_message() {
        let error = load_text("[server]\nlistn = \"x\"", &[]).unwrap_err();

        let line = error.to_string();

        assert!(
            line.starts_with("keel.toml: server.listn: unknown field `listn`, expected one of"),
            "{line}"
        );
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn a_single_underscore_variable_gets_a_hint_about_double_underscores() {
        let error = load_text("", &[("KEEL_LOG_FORMAT", "json")]).unwrap_err();

        assert!(error.to_string().contains("double underscore"), "{error}");
    }

    #[test]
    fn wrong_types_name_the_path_and_source() {
        let cases: &[Refused] = &[
            (
                "[database]\nmax_connections = \"many\"",
                &[],
                "database.max_connections",
                "keel.toml",
                "invalid type: string \"many\", expected u32",
            ),
            (
                "",
                &[("KEEL_DATABASE__MAX_CONNECTIONS", "many")],
                "database.max_connections",
                "KEEL_DATABASE__MAX_CONNECTIONS",
                "invalid type: string \"many\", expected u32",
            ),
            (
                "[server]\nbody_limit_bytes = -1",
                &[],
                "server.body_limit_bytes",
                "keel.toml",
                "invalid value: integer `-1`",
            ),
            (
                "[log]\nformat = \"xml\"",
                &[],
                "log.format",
                "keel.toml",
                "unknown variant `xml`, expected `text` or `json`",
            ),
            (
                "server = 1",
                &[],
                "server",
                "keel.toml",
                "invalid type: integer `1`, expected struct ServerConfig",
            ),
            (
                "plugins = 3",
                &[],
                "plugins",
                "keel.toml",
                "invalid type: integer `3`, expected a map",
            ),
        ];
        assert_refused(cases);
    }

    #[test]
    fn environment_overrides_win_over_the_file() {
        let file = "[server]\nlisten = \"0.0.0.0:9000\"\n[billing]\nseller_name = \"File\"";

        let config = load_text(
            file,
            &[
                ("KEEL_SERVER__LISTEN", "127.0.0.1:7000"),
                ("KEEL_BILLING__SELLER_NAME", "Environment"),
                ("KEEL_LOG__FORMAT", "json"),
            ],
        )
        .unwrap();

        assert_eq!(config.server.listen, "127.0.0.1:7000");
        assert_eq!(config.billing.seller_name, "Environment");
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn environment_values_become_integers_and_booleans_only_where_toml_would() {
        let config = load_text(
            "",
            &[
                ("KEEL_DATABASE__MAX_CONNECTIONS", "32"),
                ("KEEL_SERVER__BODY_LIMIT_BYTES", "2_048"),
                ("KEEL_PLUGINS__PAYNOW__SANDBOX", "true"),
                ("KEEL_PLUGINS__PAYNOW__INTEGRATION_ID", "1234"),
                ("KEEL_PLUGINS__PAYNOW__PIN", "007"),
                ("KEEL_PLUGINS__PAYNOW__RATE", "1.5"),
            ],
        )
        .unwrap();

        assert_eq!(config.database.max_connections, 32);
        assert_eq!(config.server.body_limit_bytes, 2048);
        let paynow = &config.plugins["paynow"];
        assert_eq!(paynow["sandbox"], toml::Value::Boolean(true));
        assert_eq!(paynow["integration_id"], toml::Value::Integer(1234));
        assert_eq!(paynow["pin"], toml::Value::String("007".to_owned()));
        assert_eq!(paynow["rate"], toml::Value::String("1.5".to_owned()));
    }

    #[test]
    fn a_number_from_the_environment_stays_text_where_the_key_wants_text() {
        let config = load_text(
            "",
            &[
                ("KEEL_BILLING__SELLER_NAME", "1984"),
                ("KEEL_LOG__FILTER", "true"),
            ],
        )
        .unwrap();

        assert_eq!(config.billing.seller_name, "1984");
        assert_eq!(config.log.filter, "true");
    }

    #[test]
    fn short_aliases_set_the_database_url_and_listen_address() {
        let config = load_text(
            "",
            &[
                ("KEEL_DATABASE_URL", "postgres://db/keel"),
                ("KEEL_LISTEN", "0.0.0.0:1234"),
            ],
        )
        .unwrap();

        assert_eq!(config.database.url.expose(), "postgres://db/keel");
        assert_eq!(config.server.listen, "0.0.0.0:1234");
    }

    #[test]
    fn full_names_win_over_short_aliases_whatever_their_order() {
        let config = load_text(
            "",
            &[
                ("KEEL_SERVER__LISTEN", "127.0.0.1:2"),
                ("KEEL_LISTEN", "127.0.0.1:1"),
            ],
        )
        .unwrap();

        assert_eq!(config.server.listen, "127.0.0.1:2");
    }

    #[test]
    fn variable_names_match_without_regard_to_case() {
        let config = load_text("", &[("keel_Server__Listen", "127.0.0.1:3")]).unwrap();

        assert_eq!(config.server.listen, "127.0.0.1:3");
    }

    #[test]
    fn unrelated_and_reserved_variables_are_ignored() {
        let config = load_text(
            "",
            &[
                ("PATH", "/usr/bin"),
                ("HOME", "/root"),
                ("DATABASE__URL", "mysql://nope"),
                ("KEEL_CONFIG", "/etc/keel.toml"),
                ("keel_config", "/etc/keel.toml"),
                ("KEEL_LOG", "debug"),
                ("KEEL_TEST_DATABASE_URL", "postgres://test"),
                ("KEEL_TEST_", "x"),
                ("KEEL_PG_URL", "postgres://pg"),
                ("KEEL_BENCH_PG_URL", "postgres://bench"),
            ],
        )
        .unwrap();

        assert_eq!(config, Config::default());
    }

    #[test]
    fn plugin_sections_come_from_the_environment_without_validation_yet() {
        let config = load_text(
            "[plugins.paynow]\nintegration_id = 1",
            &[("KEEL_PLUGINS__PAYNOW__INTEGRATION_KEY", "k-123")],
        )
        .unwrap();

        let paynow = &config.plugins["paynow"];
        assert_eq!(paynow["integration_id"], toml::Value::Integer(1));
        assert_eq!(
            paynow["integration_key"],
            toml::Value::String("k-123".to_owned())
        );
    }

    #[test]
    fn malformed_variable_names_and_shapes_are_refused_naming_the_variable() {
        let cases: &[Refused] = &[
            (
                "",
                &[("KEEL_SERVER____LISTEN", "x")],
                "server..listen",
                "KEEL_SERVER____LISTEN",
                "empty key part",
            ),
            ("", &[("KEEL_", "x")], "", "KEEL_", "empty key part"),
            (
                "server = 1",
                &[("KEEL_SERVER__LISTEN", "x")],
                "server",
                "KEEL_SERVER__LISTEN",
                "holds a value of type integer, not a table",
            ),
        ];
        assert_refused(cases);
    }

    #[test]
    fn debug_and_redacted_toml_never_show_the_database_password() {
        let from_file = load_text(&format!("[database]\nurl = \"{PASSWORD_URL}\""), &[]).unwrap();
        let from_env = load_text("", &[("KEEL_DATABASE_URL", PASSWORD_URL)]).unwrap();

        for config in [from_file, from_env] {
            assert_eq!(config.database.url.expose(), PASSWORD_URL);
            assert!(!format!("{config:?}").contains("hunter2"));
            assert!(!format!("{config:#?}").contains("hunter2"));
            assert!(!config.redacted_toml().contains("hunter2"));
            assert!(config.redacted_toml().contains("url = \"***\""));
            assert_eq!(config.database.url.to_string(), "***");
        }
    }

    #[test]
    fn the_link_secret_is_redacted_when_shown_but_kept_for_the_pay_links() {
        let config = load_text(
            "[server]\nlink_secret = \"link-secret-0123456789abcdef0123456789\"\n[payments]\nlink_days = 7",
            &[],
        )
        .unwrap();
        let links = config.app_pay_links();
        assert_eq!(
            links.secret.as_deref(),
            Some("link-secret-0123456789abcdef0123456789")
        );
        assert_eq!(links.link_days, 7);
        for shown in [
            format!("{config:?}"),
            config.redacted_toml(),
            format!("{links:?}"),
        ] {
            assert!(!shown.contains("link-secret"), "{shown}");
        }
        assert!(config.redacted_toml().contains("link_secret = \"***\""));
    }

    #[test]
    fn the_metrics_token_is_redacted_when_shown_but_kept_for_the_server() {
        let config = load_text(
            "[server]\nmetrics_token = \"ops-token-0123456789\"\n[webhooks]\nallow_networks = [\"10.0.0.0/8\"]",
            &[],
        )
        .unwrap();
        assert_eq!(
            config.server.metrics_token.as_ref().map(Secret::expose),
            Some("ops-token-0123456789")
        );
        for shown in [format!("{config:?}"), config.redacted_toml()] {
            assert!(!shown.contains("ops-token"), "{shown}");
        }
        assert!(config.redacted_toml().contains("metrics_token = \"***\""));
        assert_eq!(
            config
                .app_webhooks()
                .allow_networks
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["10.0.0.0/8"]
        );
    }

    #[test]
    fn plugin_settings_are_redacted_when_shown_but_kept_for_the_host() {
        let config = load_text(
            "[plugins.paynow]\nintegration_key = \"s3cret\"\nintegration_id = 4242\nsandbox = true",
            &[],
        )
        .unwrap();

        let shown = [format!("{config:?}"), config.redacted_toml()];

        for text in &shown {
            assert!(!text.contains("s3cret"), "{text}");
            assert!(!text.contains("4242"), "{text}");
        }
        assert!(shown[1].contains("sandbox = true"), "{}", shown[1]);
        assert_eq!(
            config.plugins["paynow"]["integration_key"],
            toml::Value::String("s3cret".to_owned())
        );
    }

    #[test]
    fn redacted_toml_has_the_shape_of_a_config_file() {
        let config = load_text(
            "[server]\npublic_url = \"https://x.example\"\n[plugins.paynow]\nkey = \"k\"",
            &[],
        )
        .unwrap();

        let reparsed: Config = toml::from_str(&config.redacted_toml()).unwrap();

        assert_eq!(reparsed.database.url.expose(), "***");
        assert_eq!(reparsed.server, config.server);
        assert_eq!(reparsed.billing, config.billing);
        assert_eq!(reparsed.plugins["paynow"]["key"].as_str(), Some("***"));
    }

    #[test]
    fn values_serde_accepts_but_keel_refuses_name_their_path_and_source() {
        let cases: &[Refused] = &[
            (
                "[server]\nlisten = \"localhost\"",
                &[],
                "server.listen",
                "keel.toml",
                "`localhost` is not a socket address",
            ),
            (
                "",
                &[("KEEL_LISTEN", "127.0.0.1")],
                "server.listen",
                "KEEL_LISTEN",
                "is not a socket address",
            ),
            (
                "[database]\nurl = \"mysql://keel:hunter2@db/keel\"",
                &[],
                "database.url",
                "keel.toml",
                "must start with sqlite:, postgres: or postgresql:, found `mysql:`",
            ),
            (
                "",
                &[("KEEL_DATABASE__URL", "keel.db")],
                "database.url",
                "KEEL_DATABASE__URL",
                "must start with sqlite:",
            ),
            (
                "[database]\nmax_connections = 0",
                &[],
                "database.max_connections",
                "keel.toml",
                "at least 1",
            ),
            (
                "[webhooks]\nallow_networks = [\"10.0.0.0/33\"]",
                &[],
                "webhooks.allow_networks",
                "keel.toml",
                "the prefix must be 0 to 32",
            ),
            (
                "[server]\nmetrics_token = \"short\"",
                &[],
                "server.metrics_token",
                "keel.toml",
                "at least 16 characters",
            ),
            (
                "[server]\nlink_secret = \"too short\"",
                &[],
                "server.link_secret",
                "keel.toml",
                "at least 32 characters",
            ),
            (
                "[server]\ntheme_dir = \"/no/such/theme\"",
                &[],
                "server.theme_dir",
                "keel.toml",
                "not a folder",
            ),
            (
                "[payments]\nlink_days = 0",
                &[],
                "payments.link_days",
                "keel.toml",
                "must be 1 to 365, found 0",
            ),
            (
                "[server]\nidempotency_keep_hours = 0",
                &[],
                "server.idempotency_keep_hours",
                "keel.toml",
                "must be 1 to 8760",
            ),
            (
                "[server]\nrequest_timeout_ms = 0",
                &[],
                "server.request_timeout_ms",
                "keel.toml",
                "at least 1",
            ),
            (
                "[server]\nbody_limit_bytes = 1023",
                &[],
                "server.body_limit_bytes",
                "keel.toml",
                "between 1024 (1 KiB) and 67108864 (64 MiB), found 1023",
            ),
            (
                "[server]\nbody_limit_bytes = 67108865",
                &[],
                "server.body_limit_bytes",
                "keel.toml",
                "found 67108865",
            ),
            (
                "[billing]\ninvoice_number_format = \"INV-{YYYY}\"",
                &[],
                "billing.invoice_number_format",
                "keel.toml",
                "needs one {SEQ} or {SEQ:n}",
            ),
            (
                "[billing]\ncredit_note_number_format = \"CN-{SEQ}-{QQ}\"",
                &[],
                "billing.credit_note_number_format",
                "keel.toml",
                "{QQ}",
            ),
            (
                "[billing]\ntax_mode = \"gross\"",
                &[],
                "billing.tax_mode",
                "keel.toml",
                "exclusive or inclusive, found `gross`",
            ),
            (
                "[billing]\ninvoice_lead_days = 91",
                &[],
                "billing.invoice_lead_days",
                "keel.toml",
                "0 to 90",
            ),
            (
                "[billing]\nbatch_size = 10",
                &[],
                "billing.batch_size",
                "keel.toml",
                "100 to 10000",
            ),
            (
                "[jobs]\nworkers = 0",
                &[],
                "jobs.workers",
                "keel.toml",
                "must be 1 to 64, found 0",
            ),
            (
                "[schedules.billing_run]\ncron = \"0 25 * * *\"",
                &[],
                "schedules",
                "keel.toml",
                "schedule \"billing_run\": \"0 25 * * *\" is not a cron expression",
            ),
            (
                "[schedules.billing_run]\ntimezone = \"Mars/Olympus\"",
                &[],
                "schedules",
                "keel.toml",
                "\"Mars/Olympus\" is not a time zone name",
            ),
            (
                "[schedules.sync]\ncron = \"*/5 * * * *\"\njob = \"usage.snyc\"",
                &[],
                "schedules",
                "keel.toml",
                "schedule \"sync\": no job is called \"usage.snyc\" (known: billing.run",
            ),
            (
                "[email]\nsmtp_url = \"http://mail.example.com\"\nfrom = \"a@b.c\"",
                &[],
                "email.smtp_url",
                "keel.toml",
                "smtp://",
            ),
            (
                "[email]\nsmtp_url = \"smtp://127.0.0.1:25\"",
                &[],
                "email.from",
                "keel.toml",
                "sender address",
            ),
            (
                "[notifications]\nkeep_skipped_days = 0",
                &[],
                "notifications.keep_skipped_days",
                "keel.toml",
                "must be 1 to 3650, found 0",
            ),
            (
                "[notifications]\ntheme_dir = \"/no/such/theme\"",
                &[],
                "notifications.theme_dir",
                "keel.toml",
                "not a folder",
            ),
            (
                "[dunning]\nlate_fee_days = 7",
                &[],
                "dunning.late_fee_days",
                "keel.toml",
                "needs an amount",
            ),
            (
                "[dunning]\nsuspend_days = 20\nterminate_days = 10",
                &[],
                "dunning",
                "keel.toml",
                "terminate_days (10) must come after suspend_days (20)",
            ),
            (
                "[billing]\nlate_fee_percent = \"150\"",
                &[],
                "billing.late_fee_percent",
                "keel.toml",
                "at most 100",
            ),
            (
                "[billing]\nlate_fee_fixed = { USD = \"5.001\" }",
                &[],
                "billing.late_fee_fixed",
                "keel.toml",
                "USD",
            ),
            (
                "[billing]\ndefault_currency = \"usd\"",
                &[],
                "billing.default_currency",
                "keel.toml",
                "ISO 4217 code such as USD or ZWG, found `usd`",
            ),
            (
                "[billing]\ndefault_currency = \"USDT\"",
                &[],
                "billing.default_currency",
                "keel.toml",
                "found `USDT`",
            ),
        ];
        assert_refused(cases);
    }

    /// A `[notifications.whatsapp]` section over an enabled WhatsApp plugin, then the
    /// literals given.
    macro_rules! whatsapp {
        ($($more:literal),*) => {
            concat!(
                "[plugins.whatsapp]\naccess_token = \"EAAG-s3cret\"\n[notifications.whatsapp]\n",
                $($more),*
            )
        };
    }

    #[test]
    fn the_whatsapp_channel_fills_the_notification_settings_with_its_defaults() {
        let config = load_text(
            whatsapp!(
                "[notifications.whatsapp.templates.payment_reminder]\n",
                "name = \"payment_reminder\"\nlanguage = \"en\"\n",
                "parameters = [\"client.first_name\", \"invoice.number\", \"invoice.currency\", ",
                "\"invoice.balance\", \"invoice.due_date\"]\n",
                "[notifications.whatsapp.templates.invoice_created]\n",
                "name = \"new_invoice\"\nlanguage = \"en_US\"\n"
            ),
            &[],
        )
        .unwrap();

        let settings = config.app_notifications();
        let channel = &settings.channels[keel_app::notify::WHATSAPP];
        assert_eq!(
            (channel.plugin.as_str(), channel.window_hours),
            ("whatsapp", Some(24))
        );
        let reminder = &channel.templates["payment_reminder"];
        assert_eq!(
            (reminder.name.as_str(), reminder.language.as_str()),
            ("payment_reminder", "en")
        );
        assert_eq!(
            reminder.parameters,
            [
                "client.first_name",
                "invoice.number",
                "invoice.currency",
                "invoice.balance",
                "invoice.due_date"
            ]
        );
        let created = &channel.templates["invoice_created"];
        assert_eq!(
            (
                created.name.as_str(),
                created.language.as_str(),
                created.parameters.len()
            ),
            ("new_invoice", "en_US", 0)
        );
        assert_eq!((&created.header, created.buttons.len()), (&None, 0));

        // A document header and buttons, as examples/keel.toml shows them.
        let config = load_text(
            whatsapp!(
                "[notifications.whatsapp.templates.invoice_created]\n",
                "name = \"invoice_ready\"\nlanguage = \"en\"\n",
                "header = { type = \"document\" }\n",
                "buttons = [{ index = 0, type = \"url\", parameter = \"pay_token\" }, ",
                "{ index = 2, type = \"quick_reply\", parameter = \"invoice.number\" }]\n",
                "[notifications.whatsapp.templates.payment_reminder]\n",
                "name = \"reminder\"\nlanguage = \"en\"\n",
                "header = { type = \"text\", parameters = [\"invoice.number\"] }\n"
            ),
            &[],
        )
        .unwrap();
        let settings = config.app_notifications();
        let created = &settings.channels["whatsapp"].templates["invoice_created"];
        assert_eq!(
            created.header,
            Some(keel_app::notify::HeaderMapping::Document)
        );
        assert_eq!(
            created.buttons,
            [
                keel_app::notify::ButtonMapping {
                    index: 0,
                    kind: keel_app::notify::ButtonKind::Url,
                    parameter: "pay_token".into()
                },
                keel_app::notify::ButtonMapping {
                    index: 2,
                    kind: keel_app::notify::ButtonKind::QuickReply,
                    parameter: "invoice.number".into()
                },
            ]
        );
        assert_eq!(
            settings.channels["whatsapp"].templates["payment_reminder"].header,
            Some(keel_app::notify::HeaderMapping::Text {
                parameters: vec!["invoice.number".into()]
            })
        );
        // The section is in `keel config check`'s output; the plugin's token is not.
        let shown = config.redacted_toml();
        assert!(shown.contains("[notifications.whatsapp]"), "{shown}");
        assert!(!shown.contains("EAAG-s3cret"), "{shown}");

        // Without the section the channel is off; the environment can change a key.
        assert!(
            load_text("", &[])
                .unwrap()
                .app_notifications()
                .channels
                .is_empty()
        );
        let config = load_text(
            whatsapp!(),
            &[("KEEL_NOTIFICATIONS__WHATSAPP__WINDOW_HOURS", "48")],
        )
        .unwrap();
        assert_eq!(
            config.app_notifications().channels["whatsapp"].window_hours,
            Some(48)
        );
    }

    #[test]
    fn a_whatsapp_channel_keel_cannot_serve_is_refused_naming_its_key() {
        let cases: &[Refused] = &[
            (
                "[notifications.whatsapp]\n",
                &[],
                "notifications.whatsapp.plugin",
                "keel.toml",
                "the notifier plugin `whatsapp` is not enabled: add a [plugins.whatsapp] section",
            ),
            (
                whatsapp!("plugin = \"whatsapp-eu\""),
                &[],
                "notifications.whatsapp.plugin",
                "keel.toml",
                "`whatsapp-eu` is not enabled",
            ),
            (
                whatsapp!("window_hours = 0"),
                &[],
                "notifications.whatsapp.window_hours",
                "keel.toml",
                "must be 1 to 168, found 0",
            ),
            (
                whatsapp!(),
                &[("KEEL_NOTIFICATIONS__WHATSAPP__WINDOW_HOURS", "169")],
                "notifications.whatsapp.window_hours",
                "KEEL_NOTIFICATIONS__WHATSAPP__WINDOW_HOURS",
                "must be 1 to 168, found 169",
            ),
            (
                whatsapp!("window = 24"),
                &[],
                "notifications.whatsapp.window",
                "keel.toml",
                "unknown field `window`, expected one of `plugin`, `window_hours`, `templates`",
            ),
            (
                whatsapp!(
                    "[notifications.whatsapp.templates.invoice_paid]\n",
                    "name = \"paid\"\nlanguage = \"en\""
                ),
                &[],
                "notifications.whatsapp.templates.invoice_paid",
                "keel.toml",
                "\"invoice_paid\" is not an event clients are notified of (one of: invoice_created,",
            ),
            (
                whatsapp!(
                    "[notifications.whatsapp.templates.password_reset]\n",
                    "name = \"reset\"\nlanguage = \"en\""
                ),
                &[],
                "notifications.whatsapp.templates.password_reset",
                "keel.toml",
                "is not an event clients are notified of",
            ),
            (
                whatsapp!(
                    "[notifications.whatsapp.templates.payment_reminder]\n",
                    "name = \"payment_reminder\"\nlanguage = \"en\"\n",
                    "parameters = [\"client.first_name\", \"invoice.numbr\"]"
                ),
                &[],
                "notifications.whatsapp.templates.payment_reminder",
                "keel.toml",
                "parameters[1]: \"invoice.numbr\" is not a value of payment_reminder (one of: seller,",
            ),
            (
                whatsapp!(
                    "[notifications.whatsapp.templates.service_unsuspended]\n",
                    "name = \"back\"\nlanguage = \"en\"\nheader = { type = \"document\" }"
                ),
                &[],
                "notifications.whatsapp.templates.service_unsuspended",
                "keel.toml",
                "header: service_unsuspended has no invoice to send as the document header",
            ),
            (
                whatsapp!(
                    "[notifications.whatsapp.templates.payment_received]\n",
                    "name = \"thanks\"\nlanguage = \"en\"\n",
                    "buttons = [{ index = 0, type = \"url\", parameter = \"pay_token\" }]"
                ),
                &[],
                "notifications.whatsapp.templates.payment_received",
                "keel.toml",
                "buttons[0].parameter: \"pay_token\" is not a value of payment_received",
            ),
            (
                whatsapp!(
                    "[notifications.whatsapp.templates.invoice_created]\n",
                    "name = \"new\"\nlanguage = \"en\"\nheader = { type = \"video\" }"
                ),
                &[],
                "notifications.whatsapp.templates.invoice_created.header.type",
                "keel.toml",
                "unknown variant `video`, expected `text` or `document`",
            ),
            (
                // `days` is a value of reminders and overdue notices, not of a new invoice.
                whatsapp!(
                    "[notifications.whatsapp.templates.invoice_created]\n",
                    "name = \"new_invoice\"\nlanguage = \"en\"\nparameters = [\"days\"]"
                ),
                &[],
                "notifications.whatsapp.templates.invoice_created",
                "keel.toml",
                "parameters[0]: \"days\" is not a value of invoice_created",
            ),
            (
                whatsapp!(
                    "[notifications.whatsapp.templates.late_fee]\n",
                    "name = \" \"\nlanguage = \"en\""
                ),
                &[],
                "notifications.whatsapp.templates.late_fee",
                "keel.toml",
                "name: the approved template's name is empty",
            ),
            (
                whatsapp!(
                    "[notifications.whatsapp.templates.late_fee]\n",
                    "name = \"late_fee\""
                ),
                &[],
                "notifications.whatsapp.templates.late_fee",
                "keel.toml",
                "missing field `language`",
            ),
            (
                whatsapp!(
                    "[notifications.whatsapp.templates.late_fee]\n",
                    "name = \"late_fee\"\nlanguage = \"en\"\nparams = []"
                ),
                &[],
                "notifications.whatsapp.templates.late_fee.params",
                "keel.toml",
                "unknown field `params`, expected one of `name`, `language`, `parameters`",
            ),
        ];
        assert_refused(cases);
    }

    #[test]
    fn boundary_values_are_accepted() {
        let file = "[database]\nurl = \"postgresql://db/keel\"\nmax_connections = 1\n\
                    [server]\nlisten = \"[::1]:0\"\nbody_limit_bytes = 1024\n";

        let config = load_text(file, &[("KEEL_SERVER__BODY_LIMIT_BYTES", "67108864")]).unwrap();

        assert_eq!(config.server.body_limit_bytes, MAX_BODY_LIMIT_BYTES);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_the_path() {
        let error = load(Some(Path::new("/nonexistent/keel.toml")), &[]).unwrap_err();

        assert!(matches!(error, ConfigError::Read { .. }));
        let line = error.to_string();
        assert!(
            line.starts_with("/nonexistent/keel.toml: cannot read"),
            "{line}"
        );
        assert_eq!(error.exit_code(), 2);
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn a_syntax_error_gives_line_and_column_on_one_line() {
        let error = load_text("[server]\nlisten = \n", &[]).unwrap_err();

        let line = error.to_string();

        assert!(line.starts_with("keel.toml:2:10: "), "{line}");
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(error.exit_code(), 2);
    }
}
