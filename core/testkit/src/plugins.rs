//! Run a plugin component in the real host, against loopback fakes.
//!
//! ```no_run
//! # async fn demo() {
//! use keel_testkit::plugins::{FakeProvider, PluginHarness, Reply};
//!
//! // A provider on 127.0.0.1 that answers every request with 202.
//! let provider = FakeProvider::start(|_req| Reply::status(202)).await;
//! // The host, with `hooks.example.com` pointed at the fake (the grant must still allow
//! // the loopback network, as an admin's `allow_networks` would).
//! let mut harness = PluginHarness::new().resolve("hooks.example.com", provider.ip());
//! let wasm = keel_testkit::plugins::build_plugin(env!("CARGO_MANIFEST_DIR"));
//! let plugin = harness
//!     .load_files(&wasm, "plugin.toml", "allow_networks = [\"127.0.0.1/32\"]")
//!     .await
//!     .unwrap();
//! # let _ = plugin; }
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use keel_plugin_host::{HostConfig, LoadError, Manifest, Plugin, PluginHost, settings};

/// A request the fake provider received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The record of one request as an axum handler sees it.
    pub fn new(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Self {
        Self {
            method: method.to_string(),
            uri: uri.to_string(),
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the fake provider answers.
pub enum Reply {
    /// A status, headers and a body.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A body of `bytes` zero bytes streamed in 64 KiB chunks, without a length.
    Stream { bytes: u64 },
    /// Never answers (the connection stays open).
    Hang,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self::Full {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::Full {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.into().into_bytes(),
        }
    }

    pub fn redirect(to: &str) -> Self {
        Self::Full {
            status: 302,
            headers: vec![("location".into(), to.into())],
            body: Vec::new(),
        }
    }
}

type Responder = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

/// An HTTP server on 127.0.0.1 that records every request and answers with a closure.
pub struct FakeProvider {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    server: crate::RunningServer,
}

impl FakeProvider {
    pub async fn start(respond: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let responder: Responder = Arc::new(respond);
        let log = Arc::clone(&received);
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let log = Arc::clone(&log);
                let responder = Arc::clone(&responder);
                async move {
                    let req = Received::new(&method, &uri, &headers, &body);
                    let reply = responder(&req);
                    log.lock().unwrap().push(req);
                    respond_with(reply).await
                }
            },
        );
        let server = crate::spawn_server(move |listener, shutdown| async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .ok();
        })
        .await;
        Self {
            addr: server.addr,
            received,
            server,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://<host>:<port><path>`: a URL on this provider under any host name the
    /// harness resolves to it.
    pub fn url_as(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.addr.port())
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

async fn respond_with(reply: Reply) -> axum::response::Response {
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut response = axum::response::Response::new(Body::from(body));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            for (n, v) in headers {
                if let (Ok(n), Ok(v)) = (
                    axum::http::HeaderName::from_bytes(n.as_bytes()),
                    axum::http::HeaderValue::from_str(&v),
                ) {
                    response.headers_mut().append(n, v);
                }
            }
            response
        }
        Reply::Stream { bytes } => {
            let chunk = Bytes::from(vec![0u8; 64 * 1024]);
            let chunks = bytes.div_ceil(chunk.len() as u64);
            let stream = futures::stream::iter(
                (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            axum::response::Response::new(Body::from_stream(stream))
        }
        Reply::Hang => {
            futures::future::pending::<()>().await;
            unreachable!()
        }
    }
}

/// The real plugin host with test-friendly defaults (an in-memory kv unless given, the
/// host's default limits).
pub struct PluginHarness {
    config: HostConfig,
    host: Option<PluginHost>,
}

impl Default for PluginHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl PluginHarness {
    pub fn new() -> Self {
        Self {
            config: HostConfig::default(),
            host: None,
        }
    }

    /// Starts from this configuration instead.
    pub fn with_config(config: HostConfig) -> Self {
        Self { config, host: None }
    }

    /// Points `name` at `ip` in the host's resolver (the grant still checks `ip`).
    pub fn resolve(mut self, name: &str, ip: IpAddr) -> Self {
        self.config
            .resolver_overrides
            .insert(name.to_owned(), vec![ip]);
        self
    }

    /// Changes the host configuration before the first load.
    pub fn configure(mut self, f: impl FnOnce(&mut HostConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// The host (built on first use).
    pub fn host(&mut self) -> &PluginHost {
        let config = self.config.clone();
        self.host
            .get_or_insert_with(|| PluginHost::new(config).expect("plugin host"))
    }

    /// Loads a component with its manifest text and an admin section (`keel.toml`'s
    /// `[plugins.<id>]` body). A section that does not validate is a `LoadError` listing
    /// every problem.
    pub async fn load(
        &mut self,
        wasm: Vec<u8>,
        manifest: &str,
        section: &str,
    ) -> Result<Plugin, LoadError> {
        let manifest =
            Manifest::parse(manifest, "plugin.toml").map_err(|e| LoadError::new("?", e))?;
        let table: toml::Table =
            toml::from_str(section).map_err(|e| LoadError::new(&manifest.id, e.to_string()))?;
        let enabled = settings::validate(&manifest, &table)
            .map_err(|e| LoadError::new(&manifest.id, e.join("; ")))?;
        self.host().load(manifest, wasm.into(), enabled).await
    }

    /// Loads a built component and the `plugin.toml` at `manifest_path`.
    pub async fn load_files(
        &mut self,
        wasm: &Path,
        manifest_path: impl AsRef<Path>,
        section: &str,
    ) -> Result<Plugin, LoadError> {
        let bytes =
            std::fs::read(wasm).unwrap_or_else(|e| panic!("reading {}: {e}", wasm.display()));
        let manifest = std::fs::read_to_string(manifest_path.as_ref())
            .unwrap_or_else(|e| panic!("reading {}: {e}", manifest_path.as_ref().display()));
        self.load(bytes, &manifest, section).await
    }

    /// Loads one of the workspace's built plugins or fixtures.
    pub async fn load_artifact(
        &mut self,
        artifact: &keel_plugins::Artifact,
        section: &str,
    ) -> Result<Plugin, LoadError> {
        let wasm = artifact.wasm().expect("built plugin");
        let manifest = artifact.manifest().expect("plugin manifest");
        self.load(wasm, &manifest, section).await
    }
}

/// Builds the plugin crate in `crate_dir` for `wasm32-wasip2` in the `release` profile
/// and returns the component's path. It runs
/// one nested cargo with the same hygiene as Keel's own plugin build: its own target
/// directory, no inherited host flags.
pub fn build_plugin(crate_dir: impl AsRef<Path>) -> PathBuf {
    let crate_dir = crate_dir.as_ref();
    let manifest = crate_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let package =
        package_name(&text).unwrap_or_else(|| panic!("no package name in {}", manifest.display()));
    let target_dir = match keel_plugins::WASM_TARGET_DIR {
        "" => std::env::temp_dir().join("keel-plugin-builds"),
        dir => PathBuf::from(dir),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(crate_dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo to build the plugin");
    assert!(
        status.success(),
        "building {} for wasm32-wasip2 failed",
        crate_dir.display()
    );
    let wasm = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    assert!(
        wasm.is_file(),
        "the build did not produce {}",
        wasm.display()
    );
    wasm
}

fn package_name(cargo_toml: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(cargo_toml).ok()?;
    Some(table.get("package")?.get("name")?.as_str()?.to_owned())
}
