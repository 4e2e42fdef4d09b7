//! `keel-fake`: Keel's loopback fake providers, for a person trying Keel without the real
//! ones. One today:
//!
//! ```text
//! keel-fake paynow --listen 127.0.0.1:8091 --integration 1201=3e9fed89-60e1-4ce5-ab6e-6b1eb2d4f977 \
//!     [--integration ID=KEY …] [--public-base https://www.paynow.co.zw] [--browser-base http://127.0.0.1:8091] \
//!     [--smtp 127.0.0.1:2525]
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

use std::net::SocketAddr;
use std::process::ExitCode;

use keel_testkit::paynow::FakePaynow;
use keel_testkit::smtp::SmtpSink;

const USAGE: &str = "usage: keel-fake paynow --listen ADDR:PORT --integration ID=KEY [--integration ID=KEY ...] [--public-base URL] [--browser-base URL] [--smtp ADDR:PORT]";

struct Args {
    listen: SocketAddr,
    integrations: Vec<(u64, String)>,
    public_base: Option<String>,
    browser_base: Option<String>,
    smtp: Option<SocketAddr>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    match args.next().as_deref() {
        Some("paynow") => {}
        Some(other) => return Err(format!("unknown fake {other:?}; the one there is: paynow")),
        None => return Err("which fake? paynow".into()),
    }
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
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("keel-fake: {problem}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
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
