//! Plugins in the CLI: what is installed (built into the binary, plus `plugin_host.dirs`),
//! the `[plugins.<id>]` sections checked before anything starts, the host built from
//! `[plugin_host]`, and `keel plugin list|inspect|check|call|test` (`test` in
//! [`crate::plugin_test`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Subcommand;
use keel_app::plugins::{self, Installed};
use keel_plugin_host::kv::{KvStore, MemoryKv};
use keel_plugin_host::{HostConfig, Kind, Plugin, PluginHost};

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// List installed plugins: id, version, kinds, WIT version, enabled or not.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one plugin: manifest, settings (secrets redacted) and effective grants.
    Inspect { id: String },
    /// Check every [plugins.<id>] section and load each enabled plugin, without starting.
    Check,
    /// Run one operation of a plugin in the real host (its limits and grant) and print the
    /// answer as JSON. Exit 0 when it answered, 1 when it answered a plugin error, 3 when it
    /// did not answer (a crash, a limit, the time-out); what it wrote to stderr and logged
    /// goes to stderr.
    Call(CallArgs),
    /// Run the cases of DIR/tests.toml against the plugin in DIR (plugin.toml, and
    /// plugin.wasm or --wasm) in the real host, its provider answered by the cases' recorded
    /// replies. Exit 0 when every case passes, 1 when one fails, 2 when the file is wrong.
    Test {
        /// The plugin's folder: plugin.toml and tests.toml.
        dir: std::path::PathBuf,
        /// The built component, when it is not DIR/plugin.wasm
        /// (target/wasm32-wasip2/release/<crate>.wasm for a Rust plugin).
        #[arg(long, value_name = "FILE")]
        wasm: Option<std::path::PathBuf>,
        /// Only the cases whose name contains this.
        #[arg(long)]
        case: Option<String>,
    },
}

/// A plugin call that did not end with an answer: exit status 1 (the plugin answered an
/// error) or 3 (it did not answer).
#[derive(Debug)]
pub struct CallFailed {
    pub code: u8,
    pub message: String,
}

impl fmt::Display for CallFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CallFailed {}

/// Problems with the plugin configuration: Keel refuses to start (exit status 2).
#[derive(Debug)]
pub struct PluginConfigError(pub Vec<String>);

impl fmt::Display for PluginConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the plugin configuration has {} problem(s):",
            self.0.len()
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PluginConfigError {}

/// The settings the demo gives the built-in plugins it enables when `keel.toml` has no
/// section for them.
const DEMO_SECTIONS: &str = r#"
[bank-transfer]
instructions = "Demo Bank, account Keel Demo Hosting, number 0000000000, branch 000"
"#;

/// Every installed plugin: the ones built into this binary, then each folder of the
/// configured directories.
pub fn installed(config: &Config) -> Result<Vec<Installed>> {
    let mut found: Vec<(String, Arc<[u8]>, String)> = keel_plugins::SHIPPED
        .iter()
        .map(|s| {
            (
                s.manifest.to_owned(),
                Arc::<[u8]>::from(s.wasm),
                "built-in".to_owned(),
            )
        })
        .collect();
    // A folder that cannot be read is a configuration problem (exit 2), named with its key.
    let mut problems = Vec::new();
    for dir in &config.plugin_host.dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(format!(
                    "plugin_host.dirs: cannot read {}: {e}",
                    dir.display()
                ));
                continue;
            }
        };
        let mut folders: Vec<_> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        folders.sort();
        for folder in folders {
            let read = |name: &str| {
                let path = folder.join(name);
                std::fs::read(&path)
                    .map_err(|e| format!("plugin_host.dirs: cannot read {}: {e}", path.display()))
            };
            match (read("plugin.toml"), read("plugin.wasm")) {
                (Ok(manifest), Ok(bytes)) => found.push((
                    String::from_utf8_lossy(&manifest).into_owned(),
                    bytes.into(),
                    folder.display().to_string(),
                )),
                (manifest, wasm) => problems.extend(manifest.err().into_iter().chain(wasm.err())),
            }
        }
    }
    if !problems.is_empty() {
        return Err(PluginConfigError(problems).into());
    }
    plugins::installed(found).map_err(|e| PluginConfigError(e).into())
}

/// The sections to apply: keel.toml's, plus the demo's for built-in plugins it does not
/// configure when `demo` is set.
pub fn sections(config: &Config, demo: bool) -> BTreeMap<String, toml::Table> {
    let mut sections = config.plugins.clone();
    if demo {
        let defaults: BTreeMap<String, toml::Table> =
            toml::from_str(DEMO_SECTIONS).expect("demo sections");
        for (id, table) in defaults {
            sections.entry(id).or_insert(table);
        }
    }
    sections
}

pub fn host_config(
    config: &Config,
    kv: Arc<dyn KvStore>,
    clock: keel_plugin_host::ClockFn,
) -> HostConfig {
    let ph = &config.plugin_host;
    HostConfig {
        max_concurrent_calls: ph.max_concurrent_calls,
        memory_limit_bytes: ph.memory_limit_mb as usize * 1024 * 1024,
        cpu_budget: Duration::from_millis(ph.cpu_budget_ms),
        call_timeout: Duration::from_millis(ph.call_timeout_ms),
        cache_dir: cache_dir(&ph.cache_dir),
        // Checked by `Config::validate` (and for `--fake-origin`, by `serve`).
        origin_overrides: config.fake_origin_overrides().unwrap_or_default(),
        kv,
        clock,
        ..HostConfig::default()
    }
}

/// Where compiled plugins are cached: `[plugin_host] cache_dir`, else the user's cache
/// directory (`$XDG_CACHE_HOME/keel/plugins`, else `$HOME/.cache/keel/plugins`); none when
/// neither variable is set, or with `cache_dir = "off"`.
pub fn cache_dir(configured: &std::path::Path) -> Option<std::path::PathBuf> {
    if configured == std::path::Path::new("off") {
        return None;
    }
    if !configured.as_os_str().is_empty() {
        return Some(configured.to_path_buf());
    }
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    };
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join("keel").join("plugins"))
}

/// Checks every section against the installed plugins' manifests; any problem stops
/// start-up with every message, each naming the plugin and key.
pub fn check_config(
    config: &Config,
    demo: bool,
) -> Result<Vec<(Installed, keel_plugin_host::Enabled)>> {
    let installed = installed(config)?;
    Ok(plugins::check_sections(&installed, &sections(config, demo)).map_err(PluginConfigError)?)
}

/// Builds the host and loads every enabled plugin (compile or cache, link, describe).
pub async fn load(
    config: &Config,
    enabled: Vec<(Installed, keel_plugin_host::Enabled)>,
    kv: Arc<dyn KvStore>,
) -> Result<(PluginHost, Vec<Plugin>)> {
    let host = PluginHost::new(host_config(config, kv, Arc::new(chrono::Utc::now)))
        .map_err(anyhow::Error::msg)?;
    let loaded = plugins::load_enabled(&host, enabled)
        .await
        .map_err(PluginConfigError)?;
    Ok((host, loaded))
}

pub async fn run(config: &Config, command: PluginCommand) -> Result<()> {
    match command {
        PluginCommand::List { json } => list(config, json),
        PluginCommand::Inspect { id } => inspect(config, &id).await,
        PluginCommand::Check => check(config).await,
        PluginCommand::Test { dir, wasm, case } => {
            crate::plugin_test::run(config, &dir, wasm, case.as_deref()).await
        }
        PluginCommand::Call(args) => call(config, &args).await,
    }
}

/// `keel plugin call`'s arguments.
#[derive(clap::Args, Debug)]
pub struct CallArgs {
    /// The plugin's id: an installed one, or the one in --dir.
    id: String,
    /// The operation, as the WIT names it (`initiate`, `verify-callback`, `send`).
    operation: String,
    /// The operation's input as JSON (`@FILE` reads a file, `-` stdin); see
    /// `keel_plugin_host::json_call` for how WIT values are written. Default: null.
    #[arg(long, default_value = "null")]
    input: String,
    /// The kind the operation belongs to, when the plugin has several.
    #[arg(long)]
    kind: Option<String>,
    /// A folder with plugin.toml and plugin.wasm (a plugin being written) instead of an
    /// installed plugin.
    #[arg(long, value_name = "DIR")]
    dir: Option<std::path::PathBuf>,
    /// A setting, as TOML (`api_key="s3cret"`, `sandbox=true`), over keel.toml's
    /// [plugins.<id>] section; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Send the plugin's requests for ORIGIN to a fake on loopback
    /// (`https://www.paynow.co.zw=http://127.0.0.1:8091`); repeatable. The plugin and its
    /// grant still see ORIGIN.
    #[arg(long = "fake", value_name = "ORIGIN=TARGET")]
    fake: Vec<String>,
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    crate::config::UsageError(message.into()).into()
}

/// The JSON `--input` names: inline, `@FILE` or `-` for stdin.
fn read_input(input: &str) -> Result<serde_json::Value> {
    let text = match input {
        "-" => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("reading --input from stdin")?;
            text
        }
        file if file.starts_with('@') => std::fs::read_to_string(&file[1..])
            .map_err(|e| usage(format!("--input {file}: {e}")))?,
        inline => inline.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| usage(format!("--input is not JSON: {e}")))
}

/// The plugin in folder `dir` as an author's build leaves it: `plugin.toml`, and `wasm` or
/// `dir/plugin.wasm` (for `plugin call --dir` and `plugin test`).
pub(crate) fn plugin_in_dir(
    dir: &std::path::Path,
    wasm: Option<&std::path::Path>,
) -> Result<Installed> {
    let manifest_path = dir.join("plugin.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .map_err(|e| usage(format!("cannot read {}: {e}", manifest_path.display())))?;
    let wasm_path = wasm.map_or_else(|| dir.join("plugin.wasm"), std::path::Path::to_path_buf);
    let bytes = std::fs::read(&wasm_path).map_err(|e| {
        usage(format!(
            "cannot read {}: {e} (build the plugin, or give its component with --wasm)",
            wasm_path.display()
        ))
    })?;
    Ok(plugins::installed([(
        manifest,
        Arc::<[u8]>::from(bytes),
        dir.display().to_string(),
    )])
    .map_err(PluginConfigError)?
    .pop()
    .expect("one plugin"))
}

/// The kind an operation of `plugin` belongs to: `wanted`, or its only kind.
pub(crate) fn kind_of(plugin: &Installed, wanted: Option<&str>) -> Result<Kind, String> {
    let id = &plugin.manifest.id;
    match wanted {
        Some(k) => plugin
            .manifest
            .kinds
            .iter()
            .copied()
            .find(|kind| kind.as_str() == k)
            .ok_or_else(|| {
                format!(
                    "plugin `{id}` has no kind `{k}` (it has: {})",
                    kinds(plugin)
                )
            }),
        None => match plugin.manifest.kinds.as_slice() {
            [one] => Ok(*one),
            _ => Err(format!(
                "plugin `{id}` has several kinds ({}): say which with --kind",
                kinds(plugin)
            )),
        },
    }
}

/// The plugin `args` name, from --dir or the installed ones.
fn find_plugin(config: &Config, args: &CallArgs) -> Result<Installed> {
    match &args.dir {
        Some(dir) => {
            let found = plugin_in_dir(dir, None)?;
            if found.manifest.id != args.id {
                return Err(usage(format!(
                    "{} is plugin `{}`, not `{}`",
                    dir.join("plugin.toml").display(),
                    found.manifest.id,
                    args.id
                )));
            }
            Ok(found)
        }
        None => {
            let all = installed(config)?;
            let ids: Vec<String> = all.iter().map(|p| p.manifest.id.clone()).collect();
            all.into_iter()
                .find(|p| p.manifest.id == args.id)
                .ok_or_else(|| {
                    usage(format!(
                        "no plugin `{}` is installed (installed: {}); give --dir for one being written",
                        args.id,
                        ids.join(", ")
                    ))
                })
        }
    }
}

async fn call(config: &Config, args: &CallArgs) -> Result<()> {
    let input = read_input(&args.input)?;
    let plugin = find_plugin(config, args)?;
    let kind = kind_of(&plugin, args.kind.as_deref()).map_err(usage)?;
    // Its section: keel.toml's, then each --set over it.
    let mut section = config.plugins.get(&args.id).cloned().unwrap_or_default();
    for pair in &args.set {
        let parsed: toml::Table = toml::from_str(pair)
            .map_err(|e| usage(format!("--set {pair}: expected KEY=VALUE in TOML ({e})")))?;
        section.extend(parsed);
    }
    let enabled = keel_plugin_host::settings::validate(&plugin.manifest, &section)
        .map_err(PluginConfigError)?;
    let mut host_config = host_config(
        config,
        Arc::new(MemoryKv::default()),
        Arc::new(chrono::Utc::now),
    );
    for pair in &args.fake {
        let (from, to) = pair
            .split_once('=')
            .ok_or_else(|| usage(format!("--fake {pair}: expected ORIGIN=TARGET")))?;
        host_config
            .origin_overrides
            .insert(from.trim(), to.trim())
            .map_err(|e| usage(format!("--fake {pair}: {e}")))?;
    }
    let host = PluginHost::new(host_config).map_err(anyhow::Error::msg)?;
    let loaded = host
        .load(plugin.manifest, plugin.wasm, enabled)
        .await
        .map_err(|e| PluginConfigError(vec![e.to_string()]))?;
    let done = loaded
        .call_json(kind, &args.operation, &input)
        .await
        .map_err(usage)?;
    for line in &done.captured.logs {
        eprintln!("log: {line}");
    }
    for line in done.captured.stderr.lines() {
        eprintln!("stderr: {line}");
    }
    match done.result {
        Ok(answer) => {
            println!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(())
        }
        Err(keel_plugin_host::PluginFailure::Plugin(e)) => Err(CallFailed {
            code: 1,
            message: format!("the plugin answered an error: {}", describe_error(&e)),
        }
        .into()),
        Err(failure) => Err(CallFailed {
            code: 3,
            message: failure.to_string(),
        }
        .into()),
    }
}

/// A plugin error as its WIT case and message: `refused: card declined`.
pub(crate) fn describe_error(e: &keel_plugin_host::PluginError) -> String {
    use keel_plugin_host::PluginError as E;
    match e {
        E::InvalidInput(m) => format!("invalid-input: {m}"),
        E::Refused(m) => format!("refused: {m}"),
        E::Unavailable(hint) => match hint.retry_after_seconds {
            Some(s) => format!("unavailable: {} (retry after {s} s)", hint.reason),
            None => format!("unavailable: {}", hint.reason),
        },
        E::Misconfigured(m) => format!("misconfigured: {m}"),
        E::Unsupported => "unsupported".to_owned(),
        E::Internal(m) => format!("internal: {m}"),
    }
}

fn kinds(p: &Installed) -> String {
    p.manifest
        .kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn list(config: &Config, json: bool) -> Result<()> {
    let installed = installed(config)?;
    if json {
        let rows: Vec<_> = installed
            .iter()
            .map(|p| {
                serde_json::json!({
                    "id": p.manifest.id,
                    "name": p.manifest.name,
                    "version": p.manifest.version.to_string(),
                    "kinds": p.manifest.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                    "wit": p.manifest.wit.to_string(),
                    "source": p.source,
                    "enabled": config.plugins.contains_key(&p.manifest.id),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<20} {:<9} {:<12} {:<6} {:<8} SOURCE",
        "ID", "VERSION", "KINDS", "WIT", "ENABLED"
    );
    for p in &installed {
        println!(
            "{:<20} {:<9} {:<12} {:<6} {:<8} {}",
            p.manifest.id,
            p.manifest.version.to_string(),
            kinds(p),
            p.manifest.wit.to_string(),
            if config.plugins.contains_key(&p.manifest.id) {
                "yes"
            } else {
                "no"
            },
            p.source
        );
    }
    Ok(())
}

async fn inspect(config: &Config, id: &str) -> Result<()> {
    let installed = installed(config)?;
    let Some(p) = installed.iter().find(|p| p.manifest.id == id) else {
        let ids: Vec<&str> = installed.iter().map(|p| p.manifest.id.as_str()).collect();
        anyhow::bail!(
            "no plugin `{id}` is installed (installed: {})",
            ids.join(", ")
        );
    };
    let m = &p.manifest;
    println!("{} ({})\n  {}", m.name, m.id, m.description);
    println!(
        "  version {}  kinds {}  wit {}  source {}",
        m.version,
        kinds(p),
        m.wit,
        p.source
    );
    println!(
        "  declared hosts: {}",
        list_or_none(m.allow.iter().map(|h| h.to_string()))
    );
    println!("  settings:");
    for (key, spec) in &m.settings {
        let mut flags = vec![spec.ty.as_str().to_owned()];
        if spec.required {
            flags.push("required".into());
        }
        if spec.secret {
            flags.push("secret".into());
        }
        if let Some(d) = &spec.default {
            flags.push(format!("default {d}"));
        }
        println!(
            "    {key} ({}){}",
            flags.join(", "),
            if spec.description.is_empty() {
                String::new()
            } else {
                format!(": {}", spec.description)
            }
        );
    }
    match config.plugins.get(id) {
        None => println!("  not enabled: add a [plugins.{id}] section to keel.toml"),
        Some(section) => match keel_plugin_host::settings::validate(m, section) {
            Ok(enabled) => {
                println!("  enabled with:");
                for (k, v) in enabled.settings.redacted() {
                    println!("    {k} = {v}");
                }
                println!(
                    "  effective hosts: {}",
                    list_or_none(enabled.grant.hosts().iter().map(|h| h.to_string()))
                );
                println!(
                    "  private networks allowed: {}",
                    list_or_none(enabled.grant.networks().iter().map(|n| n.to_string()))
                );
            }
            Err(errors) => return Err(PluginConfigError(errors).into()),
        },
    }
    Ok(())
}

fn list_or_none(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

async fn check(config: &Config) -> Result<()> {
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::default());
    let (_host, loaded) = load(config, check_config(config, false)?, kv).await?;
    if loaded.is_empty() {
        println!(
            "no plugins enabled (add [plugins.<id>] sections to keel.toml; `keel plugin list` shows what is installed)"
        );
    }
    for p in &loaded {
        let info = p.info().map(|i| i.name.clone()).unwrap_or_default();
        let kinds: Vec<&str> = p.manifest().kinds.iter().map(|k| k.as_str()).collect();
        println!(
            "ok  {} {} ({}): {info}",
            p.id(),
            p.manifest().version,
            kinds.join(",")
        );
    }
    Ok(())
}
