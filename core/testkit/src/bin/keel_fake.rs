//! `keel-fake`: Keel's loopback fake providers, for a person trying Keel without the real
//! ones. Two today, Paynow and WhatsApp:
//!
//! ```text
//! keel-fake paynow --listen 127.0.0.1:8091 --integration 1201=3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977 \
//!     [--integration ID=KEY …] [--public-base https://www.paynow.co.zw] [--browser-base http://127.0.0.1:8091] \
//!     [--smtp 127.0.0.1:2525]
//! keel-fake whatsapp --listen 127.0.0.1:8092 [--phone-number ID] [--access-token TOKEN] \
//!     [--app-secret SECRET] [--verify-token TOKEN] [--webhook URL] [--auto-statuses sent,delivered]
//! ```
//!
//! With `--public-base https://www.paynow.co.zw` the poll URLs are the ones the paynow plugin
//! accepts, and `keel serve --fake-origin https://www.paynow.co.zw=http://127.0.0.1:8091`
//! sends the plugin's requests here; `--browser-base` (default: this fake's own address when
//! the public base is not, else the public base) is where the payer's browser goes.
//!
//! `--smtp ADDR` also runs an SMTP sink there (`keel_testkit::smtp`): point `[email] smtp_url`
//! at it and every email Keel sends (the invoice, the receipt) is printed here, text part and
//! all, instead of being delivered.
//!
//! It prints where it listens and the keel.toml lines to use (the first integration as the USD
//! one, the second as the ZWG one), logs every request and status
//! update, and runs until Ctrl-C, with Paynow's real test-number delays
//! (`keel_testkit::paynow`).
//!
//! `whatsapp` serves the fake Cloud API (`keel_testkit::whatsapp`) on real time: sends to
//! `POST /<version>/<phone number id>/messages` with the bearer token, errors as Meta's, the
//! 24-hour window (free-form text to someone who has not written is refused with 131047;
//! templates go). With `--webhook URL` it posts signed status webhooks there, the
//! `--auto-statuses` after each accepted message. It prints the `[plugins.whatsapp]` lines and
//! the `keel serve --fake-origin https://graph.facebook.com=http://ADDR` to use, logs every
//! request and webhook attempt, and runs until Ctrl-C. Unset, the phone number id, the token
//! and the secrets are the fake's defaults.

use std::net::SocketAddr;
use std::process::ExitCode;

use keel_testkit::paynow::FakePaynow;
use keel_testkit::smtp::SmtpSink;
use keel_testkit::whatsapp::{self, FakeWhatsApp};

const USAGE: &str = "usage: keel-fake paynow --listen ADDR:PORT --integration ID=KEY [--integration ID=KEY ...] [--public-base URL] [--browser-base URL] [--smtp ADDR:PORT]
       keel-fake whatsapp --listen ADDR:PORT [--phone-number ID] [--access-token TOKEN] [--app-secret SECRET] [--verify-token TOKEN] [--webhook URL] [--auto-statuses sent,delivered]";

/// The statuses `--auto-statuses` takes (the ones the WhatsApp plugin reads).
const STATUSES: [&str; 4] = ["sent", "delivered", "read", "failed"];

/// Which fake, with its flags.
enum Fake {
    Paynow(Args),
    WhatsApp(WhatsAppArgs),
}

struct WhatsAppArgs {
    listen: SocketAddr,
    phone_number_id: Option<String>,
    access_token: Option<String>,
    app_secret: Option<String>,
    verify_token: Option<String>,
    webhook: Option<String>,
    auto_statuses: Vec<String>,
}

struct Args {
    listen: SocketAddr,
    integrations: Vec<(u64, String)>,
    public_base: Option<String>,
    browser_base: Option<String>,
    smtp: Option<SocketAddr>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Fake, String> {
    match args.next().as_deref() {
        Some("paynow") => parse_paynow(args).map(Fake::Paynow),
        Some("whatsapp") => parse_whatsapp(args).map(Fake::WhatsApp),
        Some("-h" | "--help") => Err(String::new()),
        Some(other) => Err(format!(
            "unknown fake {other:?}; the ones there are: paynow, whatsapp"
        )),
        None => Err("which fake? paynow or whatsapp".into()),
    }
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .map_err(|e| format!("--listen {text}: {e}"))
}

fn parse_whatsapp(mut args: impl Iterator<Item = String>) -> Result<WhatsAppArgs, String> {
    let mut listen = None;
    let mut phone_number_id = None;
    let mut access_token = None;
    let mut app_secret = None;
    let mut verify_token = None;
    let mut webhook = None;
    let mut auto_statuses = Vec::new();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => listen = Some(parse_listen(&value()?)?),
            "--phone-number" => {
                let id = value()?;
                if !id.chars().all(|c| c.is_ascii_digit()) {
                    return Err(format!(
                        "--phone-number {id}: the phone number id is digits (WhatsApp Manager, API Setup), not the number"
                    ));
                }
                phone_number_id = Some(id);
            }
            "--access-token" => access_token = Some(value()?),
            "--app-secret" => app_secret = Some(value()?),
            "--verify-token" => verify_token = Some(value()?),
            "--webhook" => {
                let url = value()?;
                if !url.starts_with("http://") && !url.starts_with("https://") {
                    return Err(format!("--webhook {url}: expected an http(s) URL"));
                }
                webhook = Some(url);
            }
            "--auto-statuses" => {
                let text = value()?;
                auto_statuses = text.split(',').map(|s| s.trim().to_owned()).collect();
                if let Some(bad) = auto_statuses
                    .iter()
                    .find(|s| !STATUSES.contains(&s.as_str()))
                {
                    return Err(format!(
                        "--auto-statuses {text}: {bad:?} is not one of {}",
                        STATUSES.join(", ")
                    ));
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    Ok(WhatsAppArgs {
        listen: listen.ok_or("--listen is required")?,
        phone_number_id,
        access_token,
        app_secret,
        verify_token,
        webhook,
        auto_statuses,
    })
}

fn parse_paynow(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut listen = None;
    let mut integrations = Vec::new();
    let mut public_base = None;
    let mut browser_base = None;
    let mut smtp = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => {
                let text = value()?;
                listen = Some(
                    text.parse::<SocketAddr>()
                        .map_err(|e| format!("--listen {text}: {e}"))?,
                );
            }
            "--integration" => {
                let text = value()?;
                let (id, key) = text
                    .split_once('=')
                    .filter(|(_, key)| !key.is_empty())
                    .ok_or_else(|| format!("--integration {text}: expected ID=KEY"))?;
                let id = id
                    .parse::<u64>()
                    .map_err(|e| format!("--integration {text}: id: {e}"))?;
                integrations.push((id, key.to_owned()));
            }
            "--public-base" => public_base = Some(value()?),
            "--browser-base" => browser_base = Some(value()?),
            "--smtp" => {
                let text = value()?;
                smtp = Some(
                    text.parse::<SocketAddr>()
                        .map_err(|e| format!("--smtp {text}: {e}"))?,
                );
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    if integrations.is_empty() {
        return Err("give at least one --integration ID=KEY".into());
    }
    Ok(Args {
        listen: listen.ok_or("--listen is required")?,
        integrations,
        public_base,
        browser_base,
        smtp,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match parse(std::env::args().skip(1)) {
        Ok(Fake::Paynow(args)) => paynow(args).await,
        Ok(Fake::WhatsApp(args)) => whatsapp(args).await,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("keel-fake: {problem}");
            }
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// A TOML string literal.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

async fn whatsapp(args: WhatsAppArgs) -> ExitCode {
    let mut builder = FakeWhatsApp::builder().listen(args.listen).log(true);
    if let Some(id) = &args.phone_number_id {
        builder = builder.phone_number(id.as_str(), whatsapp::DISPLAY_PHONE_NUMBER);
    }
    if let Some(token) = &args.access_token {
        builder = builder.access_token(token.as_str());
    }
    if let Some(secret) = &args.app_secret {
        builder = builder.app_secret(secret.as_str());
    }
    if let Some(token) = &args.verify_token {
        builder = builder.verify_token(token.as_str());
    }
    if let Some(url) = &args.webhook {
        builder = builder.webhook(url.as_str());
    }
    let statuses: Vec<&str> = args.auto_statuses.iter().map(String::as_str).collect();
    builder = builder.auto_statuses(&statuses);
    let fake = match builder.try_start().await {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!("keel-fake: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };

    let (phone_number_id, _) = fake.phone_numbers()[0].clone();
    println!(
        "Fake WhatsApp Cloud API listening on {} (plain HTTP, test mode only; Ctrl-C stops it)",
        fake.origin()
    );
    println!(
        "  send:      POST {}/<version>/{phone_number_id}/messages with Authorization: Bearer <access token>",
        fake.origin()
    );
    println!(
        "  window:    free-form text to a number that has not written in 24 hours is refused (131047); templates go"
    );
    match &args.webhook {
        Some(url) => {
            println!("  webhooks:  POST {url}, signed with the app secret (X-Hub-Signature-256)");
            if statuses.is_empty() {
                println!("             no statuses on their own (--auto-statuses sent,delivered)");
            } else {
                println!(
                    "             after each accepted message: {}",
                    statuses.join(", ")
                );
            }
        }
        None => println!("  webhooks:  none (--webhook URL to receive statuses)"),
    }
    println!();
    println!("keel.toml:");
    println!("[plugins.whatsapp]");
    println!("access_token = {}", toml_string(fake.access_token()));
    println!("phone_number_id = {}", toml_string(&phone_number_id));
    println!("app_secret = {}", toml_string(fake.app_secret()));
    println!("verify_token = {}", toml_string(fake.verify_token()));
    // Reached through `--fake-origin`, the plugin keeps its default api_base and its grant
    // of graph.facebook.com: no private network to allow.
    println!(
        "# and start Keel with: keel serve --fake-origin https://graph.facebook.com={}",
        fake.origin()
    );
    println!();

    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("keel-fake: waiting for Ctrl-C: {e}");
    }
    fake.stop().await;
    ExitCode::SUCCESS
}

async fn paynow(args: Args) -> ExitCode {
    let integrations: Vec<(u64, &str)> = args
        .integrations
        .iter()
        .map(|(id, key)| (*id, key.as_str()))
        .collect();
    let mut builder = FakePaynow::builder(&integrations)
        .listen(args.listen)
        .log(true);
    if let Some(base) = &args.public_base {
        builder = builder.public_base(base.as_str());
        // A public base the payer's browser cannot reach (Paynow's own origin, reached by Keel
        // through `--fake-origin`): browsers come here instead, unless told otherwise.
        if args.browser_base.is_none() {
            builder = builder.browser_base_here();
        }
    }
    if let Some(base) = &args.browser_base {
        builder = builder.browser_base(base.as_str());
    }
    let paynow = match builder.try_start().await {
        Ok(paynow) => paynow,
        Err(e) => {
            eprintln!("keel-fake: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };

    let network = match paynow.ip() {
        std::net::IpAddr::V4(ip) => format!("{ip}/32"),
        std::net::IpAddr::V6(ip) => format!("{ip}/128"),
    };
    println!(
        "Fake Paynow listening on {} (plain HTTP, test mode only; Ctrl-C stops it)",
        paynow.origin()
    );
    println!(
        "  initiate:  POST {0}/interface/initiatetransaction, POST {0}/interface/remotetransaction",
        paynow.origin()
    );
    println!(
        "  pollurl and browserurl start with {}",
        paynow.public_base()
    );
    println!("  browserurl starts with {}", paynow.browser_base());
    println!(
        "  transactions, each with a Pay/Cancel page: {}/",
        paynow.origin()
    );
    println!(
        "  test phones: 0771111111 paid after 5 s, 0772222222 paid after 30 s, 0773333333 cancelled after 30 s, 0774444444 refused; others wait for the page"
    );
    println!();
    // Reached through `--fake-origin`, the plugin still connects to Paynow's own origin as far
    // as its grant goes: no private network to allow.
    let fake_origin = paynow.public_base() == "https://www.paynow.co.zw";
    println!("keel.toml:");
    println!("[plugins.paynow]");
    for ((id, key), currency) in args.integrations.iter().zip(["usd", "zwg"]) {
        println!("{currency}_integration_id = {id}");
        println!("{currency}_integration_key = \"{}\"", key.to_lowercase());
    }
    if !fake_origin {
        println!("allow_networks = [\"{network}\"]");
    }
    if fake_origin {
        println!(
            "# and start Keel with: keel serve --fake-origin https://www.paynow.co.zw={}",
            paynow.origin()
        );
    } else {
        println!(
            "# The paynow plugin must send to {} instead of https://www.paynow.co.zw (this fake has no TLS);",
            paynow.origin()
        );
        println!(
            "# or run this fake with --public-base https://www.paynow.co.zw and Keel with --fake-origin."
        );
    }
    let sink = match args.smtp {
        None => None,
        Some(addr) => match SmtpSink::start_on(addr).await {
            Ok(sink) => {
                println!("[email]");
                println!("smtp_url = \"{}\"", sink.url());
                println!("from = \"Keel Demo Hosting <billing@example.com>\"");
                println!(
                    "# SMTP sink on {addr}: every email sent to it is printed here, never delivered"
                );
                Some(sink)
            }
            Err(e) => {
                eprintln!("keel-fake: cannot listen on {addr} for SMTP: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    println!();
    if let Some(sink) = sink {
        tokio::spawn(print_mail(sink));
    }

    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("keel-fake: waiting for Ctrl-C: {e}");
    }
    paynow.stop().await;
    ExitCode::SUCCESS
}

/// Prints each message the sink receives: its envelope, subject and text part.
async fn print_mail(sink: SmtpSink) {
    loop {
        for mail in sink.take() {
            println!("=== email to {} from {}", mail.to.join(", "), mail.from);
            for name in ["Subject", "Date"] {
                if let Some(value) = mail.header(name) {
                    println!("{name}: {value}");
                }
            }
            match mail.text() {
                Some(text) => println!("\n{}", text.trim_end()),
                None => println!("(no text part; {} bytes)", mail.data.len()),
            }
            println!("=== end of email");
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Fake, String> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn whatsapp_takes_its_flags() {
        let Ok(Fake::WhatsApp(a)) = args(
            "whatsapp --listen 127.0.0.1:8092 --phone-number 106540352242922 --access-token EAAG-t \
             --app-secret s3cret --verify-token v-1 --webhook http://127.0.0.1:8080/hooks/notifiers/whatsapp \
             --auto-statuses sent,delivered",
        ) else {
            panic!("parsed");
        };
        assert_eq!(a.listen, "127.0.0.1:8092".parse().unwrap());
        assert_eq!(a.phone_number_id.as_deref(), Some("106540352242922"));
        assert_eq!(a.access_token.as_deref(), Some("EAAG-t"));
        assert_eq!(a.app_secret.as_deref(), Some("s3cret"));
        assert_eq!(a.verify_token.as_deref(), Some("v-1"));
        assert_eq!(
            a.webhook.as_deref(),
            Some("http://127.0.0.1:8080/hooks/notifiers/whatsapp")
        );
        assert_eq!(a.auto_statuses, vec!["sent", "delivered"]);

        let Ok(Fake::WhatsApp(a)) = args("whatsapp --listen 127.0.0.1:0") else {
            panic!("parsed");
        };
        assert_eq!(a.phone_number_id, None);
        assert!(a.auto_statuses.is_empty());
    }

    #[test]
    fn whatsapp_says_what_is_wrong() {
        let problem = |line: &str| match args(line) {
            Err(problem) => problem,
            Ok(_) => panic!("{line} parsed"),
        };
        assert_eq!(problem("whatsapp"), "--listen is required");
        assert!(
            problem("whatsapp --listen 127.0.0.1:1 --auto-statuses sent,seen").contains("\"seen\"")
        );
        assert!(
            problem("whatsapp --listen 127.0.0.1:1 --phone-number +263771234567")
                .contains("digits")
        );
        assert!(
            problem("whatsapp --listen 127.0.0.1:1 --webhook localhost:8080").contains("http(s)")
        );
        assert!(problem("whatsapp --listen 127.0.0.1:1 --access-token").contains("needs a value"));
        assert!(problem("telegram").contains("paynow, whatsapp"));
        assert!(matches!(
            args("paynow --listen 127.0.0.1:1 --integration 1=k"),
            Ok(Fake::Paynow(_))
        ));
    }

    #[test]
    fn toml_strings_read_back() {
        assert_eq!(toml_string("EAAG-t"), "\"EAAG-t\"");
        for text in ["a\"b", "it's", "back\\slash", "M\u{fc}ller"] {
            let table: toml::Table = toml::from_str(&format!("k = {}", toml_string(text))).unwrap();
            assert_eq!(table["k"].as_str(), Some(text));
        }
    }
}
