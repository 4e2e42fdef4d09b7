//! `keel notify …`: notification channels served by notifier plugins (`[notifications.whatsapp]`)
//! at the command line: a test message straight through a channel's plugin, and a client's
//! notifications with where each one got.
//!
//! Also the start-up check the configuration cannot make on its own: a channel's plugin must
//! be a notifier, which only its installed manifest says ([`check_channels`], called where
//! the plugins are loaded).

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use keel_app::notifications::{self, NotificationView};
use keel_app::plugins::Installed;
use keel_app::{App, AppError, Ctx};
use keel_domain::contact::Phone;
use keel_domain::ids::ClientId;
use keel_plugin_host::notifier::{DeliveryStatus, Message, Notifier as _, Template};
use keel_plugin_host::{Kind, PluginFailure};
use serde_json::json;

use crate::config::{Config, UsageError};
use crate::plugins::{CallFailed, PluginConfigError};

#[derive(clap::Subcommand, Debug)]
pub enum NotifyCommand {
    /// Send one message through a channel's notifier plugin now, to check its setup: the
    /// plugin's settings, the provider's token, an approved template. Nothing is written to
    /// the database. Prints the provider's message id and status; exit 1 when the plugin
    /// answers an error (its kind and message), 3 when it does not answer.
    Test(TestArgs),
    /// A client's notifications, newest first (at most 100): event, channel, recipient,
    /// state, the provider's delivery receipt and id, and why one failed or was skipped.
    List {
        /// The client's id.
        #[arg(long)]
        client: i64,
        #[arg(long)]
        json: bool,
    },
}

/// `keel notify test`'s arguments.
#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// The channel, as its `[notifications.<channel>]` section names it (`whatsapp`).
    #[arg(long)]
    channel: String,
    /// The recipient, an E.164 phone number (`+263771234567`).
    #[arg(long)]
    to: String,
    /// The message's text (default: a short test message). WhatsApp takes free-form text
    /// only within 24 hours of the recipient's last message; outside them send a template.
    #[arg(long)]
    text: Option<String>,
    /// Send this provider-approved template instead of free-form text.
    #[arg(long)]
    template: Option<String>,
    /// The template's language code (`en`, `en_US`); default `en`.
    #[arg(long, requires = "template")]
    language: Option<String>,
    /// A body parameter of the template, in order; repeatable.
    #[arg(long = "param", value_name = "VALUE", requires = "template")]
    params: Vec<String>,
    #[arg(long)]
    json: bool,
}

/// The shortest secret setting looked for in a plugin's error.
const MIN_REDACTED_CHARS: usize = 8;

/// The text of a test message when `--text` is not given.
const TEST_TEXT: &str = "A test message from Keel (keel notify test): this channel is set up.";

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Bad input is a usage error (exit 2); anything else a failure (exit 1).
fn fail(e: AppError) -> anyhow::Error {
    match e {
        AppError::Invalid { .. } | AppError::InvalidText { .. } => {
            anyhow!(UsageError(e.to_string()))
        }
        other => anyhow!("{other}"),
    }
}

pub async fn command(config: &Config, command: NotifyCommand) -> Result<()> {
    match command {
        NotifyCommand::Test(args) => test(config, &args).await,
        NotifyCommand::List { client, json } => list(config, client, json).await,
    }
}

/// Each plugin channel's plugin is installed, enabled and a notifier (start-up stops here
/// otherwise, exit 2, naming the key). `enabled` is what `plugins::check_config` returned.
pub fn check_channels(
    config: &Config,
    enabled: &[(Installed, keel_plugin_host::Enabled)],
) -> Result<()> {
    let mut problems = Vec::new();
    for (channel, c) in config.plugin_channels() {
        match enabled.iter().find(|(p, _)| p.manifest.id == c.plugin) {
            // `Config::validate` asked for the section; `check_config` for the installed
            // plugin. Said again in case a caller skipped one of them.
            None => problems.push(format!(
                "notifications.{channel}.plugin: the notifier plugin `{}` is not enabled (add a [plugins.{}] section)",
                c.plugin, c.plugin
            )),
            Some((p, _)) if !p.manifest.kinds.contains(&Kind::Notifier) => {
                let kinds: Vec<&str> = p.manifest.kinds.iter().map(|k| k.as_str()).collect();
                problems.push(format!(
                    "notifications.{channel}.plugin: plugin `{}` is not a notifier (its kinds: {}), so it cannot send {channel} messages",
                    c.plugin,
                    kinds.join(", ")
                ));
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PluginConfigError(problems).into())
    }
}

/// The reference of a test message: unique per run, and never a notification's
/// (`keel-notification-<id>`), so a provider that deduplicates on it sends it.
fn test_reference() -> String {
    format!("keel-test-{}", chrono::Utc::now().timestamp_millis())
}

fn status_name(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Accepted => "accepted",
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Read => "read",
        DeliveryStatus::Failed => "failed",
    }
}

/// `text` with every secret setting of the plugin's section shown as `***`: a plugin should
/// never put its token in an error, and this makes sure the command does not print one.
fn without_secrets(text: &str, plugin: &Installed, config: &Config) -> String {
    let Some(section) = config.plugins.get(&plugin.manifest.id) else {
        return text.to_owned();
    };
    let mut out = text.to_owned();
    for (key, spec) in &plugin.manifest.settings {
        // A secret too short to be a credential (a placeholder) would only mangle words.
        if let (true, Some(toml::Value::String(secret))) = (spec.secret, section.get(key))
            && secret.len() >= MIN_REDACTED_CHARS
        {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

async fn test(config: &Config, args: &TestArgs) -> Result<()> {
    // The number first: a bad one is refused before anything is loaded or sent.
    let to = Phone::parse(&args.to)
        .map_err(|e| usage(format!("--to: {e}; expected E.164, such as +263771234567")))?;
    let channels = config.plugin_channels();
    let Some((channel, settings)) = channels.iter().find(|(name, _)| *name == args.channel) else {
        let known: Vec<&str> = channels.iter().map(|(name, _)| *name).collect();
        return Err(usage(if args.channel == keel_app::notify::EMAIL {
            "--channel email: email goes through [email] smtp_url, not a notifier plugin; \
             `keel notify test` checks plugin channels (whatsapp)"
                .to_owned()
        } else if known.is_empty() {
            format!(
                "--channel {}: no plugin channel is configured: add a [notifications.{}] section \
                 to keel.toml (docs/notifications.md)",
                args.channel, args.channel
            )
        } else {
            format!(
                "--channel {}: not a configured channel (configured: {})",
                args.channel,
                known.join(", ")
            )
        }));
    };
    if args.text.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(usage("--text is empty"));
    }
    if args
        .template
        .as_deref()
        .is_some_and(|t| t.trim().is_empty())
    {
        return Err(usage("--template is empty"));
    }
    // Every plugin section is checked as at start; only the channel's plugin is loaded, on
    // a memory key-value store: a test send writes nothing to the database.
    let enabled = crate::plugins::check_config(config, false)?;
    check_channels(config, &enabled)?;
    let one: Vec<_> = enabled
        .into_iter()
        .filter(|(p, _)| p.manifest.id == settings.plugin)
        .collect();
    let installed = one
        .first()
        .map(|(p, _)| p.clone())
        .context("the channel's plugin is not enabled")?;
    let kv = Arc::new(keel_plugin_host::kv::MemoryKv::default());
    let (_host, loaded) = crate::plugins::load(config, one, kv).await?;
    let notifier = loaded
        .iter()
        .find_map(|p| p.notifier())
        .context("the channel's plugin did not load as a notifier")?;
    let reference = test_reference();
    let message = Message {
        reference: reference.clone(),
        to: to.as_str().to_owned(),
        subject: None,
        body: args.text.clone().unwrap_or_else(|| TEST_TEXT.to_owned()),
        template: args.template.as_ref().map(|name| Template {
            name: name.clone(),
            language: args.language.clone().unwrap_or_else(|| "en".to_owned()),
            parameters: args.params.clone(),
            header: None,
            buttons: Vec::new(),
        }),
        attachment: None,
    };
    let what = if message.template.is_some() {
        "template"
    } else {
        "text"
    };
    match notifier.send(message).await {
        Ok(receipt) => {
            let status = status_name(receipt.status);
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "channel": channel,
                        "plugin": settings.plugin,
                        "to": to.as_str(),
                        "kind": what,
                        "reference": reference,
                        "provider_id": receipt.provider_id,
                        "status": status,
                    }))?
                );
            } else {
                println!(
                    "sent a test {what} to {} through {channel} (plugin {})",
                    to.as_str(),
                    settings.plugin
                );
                println!("  reference:   {reference}");
                println!("  provider id: {}", receipt.provider_id);
                println!("  status:      {status}");
            }
            Ok(())
        }
        Err(PluginFailure::Plugin(e)) => Err(CallFailed {
            code: 1,
            message: without_secrets(
                &format!(
                    "the {} plugin did not send the test {what}: {}",
                    settings.plugin,
                    crate::plugins::describe_error(&e)
                ),
                &installed,
                config,
            ),
        }
        .into()),
        Err(failure) => Err(CallFailed {
            code: 3,
            message: without_secrets(
                &format!("the {} plugin did not answer: {failure}", settings.plugin),
                &installed,
                config,
            ),
        }
        .into()),
    }
}

fn or_dash(value: Option<&str>) -> &str {
    match value {
        Some(v) if !v.is_empty() => v,
        _ => "-",
    }
}

/// Why a notification failed or was skipped, or what its provider said of a failed delivery.
fn reason(n: &NotificationView) -> Option<String> {
    match (&n.last_error, &n.delivery_detail) {
        (Some(e), Some(d)) => Some(format!("{e}; delivery: {d}")),
        (Some(e), None) => Some(e.clone()),
        (None, Some(d)) => Some(format!("delivery: {d}")),
        (None, None) => None,
    }
}

async fn list(config: &Config, client: i64, json: bool) -> Result<()> {
    let db = crate::open(config).await.context("opening the database")?;
    let app = App::new(db)
        .with_billing(config.app_billing())
        .with_notifications(config.app_notifications());
    let rows = notifications::of_client(&app, &Ctx::system("cli"), ClientId(client))
        .await
        .map_err(fail)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        eprintln!("client {client} has no notifications");
        return Ok(());
    }
    println!(
        "{:>6} {:<20} {:<9} {:<16} {:<8} {:<10} {:<20} PROVIDER ID",
        "ID", "EVENT", "CHANNEL", "RECIPIENT", "STATE", "DELIVERY", "CREATED"
    );
    for n in &rows {
        println!(
            "{:>6} {:<20} {:<9} {:<16} {:<8} {:<10} {:<20} {}",
            n.id,
            n.event,
            n.channel,
            n.recipient,
            n.state.as_str(),
            n.delivery.map_or("-", |d| d.as_str()),
            n.created_at.format("%Y-%m-%d %H:%M:%S"),
            or_dash(n.provider_id.as_deref()),
        );
        // Why it failed or was skipped, under its row: reasons are sentences.
        if let Some(why) = reason(n) {
            println!("{:>6} reason: {why}", "");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_settings_never_reach_the_output_and_short_ones_leave_words_alone() {
        let artifact = &keel_plugins::KEEL_PLUGIN_WHATSAPP;
        let plugin = keel_app::plugins::installed([(
            artifact.manifest().unwrap(),
            Arc::<[u8]>::from(artifact.wasm().unwrap()),
            "built-in".to_owned(),
        )])
        .unwrap()
        .pop()
        .unwrap();
        let mut config = Config::default();
        config.plugins.insert(
            "whatsapp".into(),
            toml::from_str(
                "access_token = \"EAAG-token-0123456789\"\napp_secret = \"x\"\n\
                 phone_number_id = \"106540352242922\"\nverify_token = \"verify-0123\"",
            )
            .unwrap(),
        );

        let shown = without_secrets(
            "misconfigured: token EAAG-token-0123456789 for 106540352242922 (verify-0123) in text",
            &plugin,
            &config,
        );

        assert_eq!(
            shown,
            "misconfigured: token *** for 106540352242922 (***) in text"
        );
    }
}
