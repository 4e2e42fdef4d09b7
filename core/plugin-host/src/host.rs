//! The engine, the plugin loader and the call machinery.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap, UpdateDeadline,
};
use wasmtime_wasi::WasiCtxBuilder;

use crate::bindings::{v0_1, v0_2};
use crate::ctx::{CappedBuffer, LogLimits, MemoryLimitReached, MemoryLimiter, PluginCtx};
use crate::failure::{LoadError, PluginError, PluginFailure};
use crate::kv::{KvStore, MemoryKv};
use crate::manifest::{Kind, Manifest, Version};
use crate::outbound::{HttpLimits, OriginOverrides, Outbound, ResolverOverrides};
use crate::settings::{Enabled, Settings};

/// The WIT minors this host serves, newest first.
pub const SUPPORTED_WIT: &[(u64, u64)] = &[(0, 2), (0, 1)];

/// How often the epoch ticks; CPU budgets are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The kernel's clock as plugins see it.
pub type ClockFn = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Limits and services of the plugin host.
#[derive(Clone)]
pub struct HostConfig {
    /// Plugin calls running at once; sizes the instance pool (a semaphore queues the rest).
    pub max_concurrent_calls: u32,
    /// Bytes of linear memory (all memories together) and tables one call may use.
    pub memory_limit_bytes: usize,
    /// CPU time one call may use, counted in epoch ticks of [`EPOCH_TICK`].
    pub cpu_budget: Duration,
    /// Wall-clock time of one call, host imports (HTTP) included.
    pub call_timeout: Duration,
    /// The guest's stack.
    pub max_wasm_stack_bytes: usize,
    /// Where compiled plugins are cached (`<id>-<hash of the bytes and engine>.cwasm`; a new
    /// build of a plugin replaces its older ones, entries unused for [`CACHE_KEEP`] go); none
    /// compiles every time.
    pub cache_dir: Option<PathBuf>,
    pub http: HttpLimits,
    pub log: LogLimits,
    /// Host names pointed at fixed addresses (tests put providers on loopback this way;
    /// the grant still has to allow those addresses).
    pub resolver_overrides: ResolverOverrides,
    /// Origins whose connections go to a loopback fake instead (`keel serve --fake-origin`):
    /// for trying Keel and testing it against fake providers only; logged as a warning
    /// when the host starts.
    pub origin_overrides: OriginOverrides,
    pub kv: Arc<dyn KvStore>,
    pub clock: ClockFn,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 16,
            memory_limit_bytes: 64 * 1024 * 1024,
            cpu_budget: Duration::from_secs(2),
            call_timeout: Duration::from_secs(30),
            max_wasm_stack_bytes: 512 * 1024,
            cache_dir: None,
            http: HttpLimits::default(),
            log: LogLimits::default(),
            resolver_overrides: ResolverOverrides::new(),
            origin_overrides: OriginOverrides::new(),
            kv: Arc::new(MemoryKv::default()),
            clock: Arc::new(Utc::now),
        }
    }
}

/// The plugin host: one engine and linker for the process.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<HostInner>,
}

pub(crate) struct HostInner {
    engine: Engine,
    linker: Linker<PluginCtx>,
    semaphore: Arc<Semaphore>,
    config: HostConfig,
    cpu_ticks: u64,
    ticker_stop: Arc<AtomicBool>,
    /// The cache was pruned of old entries (once per host).
    pruned: std::sync::Once,
}

impl Drop for HostInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// What every store of one plugin shares.
pub(crate) struct Shared {
    pub(crate) id: String,
    pub(crate) settings: Settings,
    pub(crate) outbound: Outbound,
    pub(crate) kv: Arc<dyn KvStore>,
    pub(crate) clock: ClockFn,
    pub(crate) log_limits: LogLimits,
}

impl PluginHost {
    /// Builds the engine (pooling allocator, epoch interruption, no component-model
    /// concurrency) and the linker (WASI p2 locked down, then the keel:plugin imports), and
    /// starts the epoch ticker.
    pub fn new(config: HostConfig) -> Result<Self, String> {
        for (from, to) in config.origin_overrides.pairs() {
            tracing::warn!(
                from,
                to,
                "FAKE ORIGIN: plugin requests to {from} are sent to {to}; never use this with real money"
            );
        }
        let n = config.max_concurrent_calls.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * 24)
            .total_memories(n * 4)
            .total_tables(n * 24)
            .total_stacks(n)
            .max_core_instances_per_component(24)
            .max_memories_per_component(4)
            .max_tables_per_component(24)
            .table_elements(100_000)
            .max_component_instance_size(2 * 1024 * 1024)
            .max_core_instance_size(2 * 1024 * 1024)
            .max_memory_size(config.memory_limit_bytes);
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .concurrency_support(false)
            .max_wasm_stack(config.max_wasm_stack_bytes)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| format!("wasmtime engine: {e}"))?;

        let mut linker = Linker::<PluginCtx>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| format!("linking WASI: {e}"))?;
        // Every served minor's imports: a component links against its own.
        v0_2::host::Host_::add_to_linker::<_, wasmtime::component::HasSelf<PluginCtx>>(
            &mut linker,
            |c| c,
        )
        .map_err(|e| format!("linking keel:plugin@0.2 imports: {e}"))?;
        v0_1::host::Host_::add_to_linker::<_, wasmtime::component::HasSelf<PluginCtx>>(
            &mut linker,
            |c| c,
        )
        .map_err(|e| format!("linking keel:plugin@0.1 imports: {e}"))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = Arc::clone(&ticker_stop);
            std::thread::Builder::new()
                .name("keel-plugin-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| format!("starting the epoch ticker: {e}"))?;
        }
        let cpu_ticks = (config.cpu_budget.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        Ok(Self {
            inner: Arc::new(HostInner {
                engine,
                linker,
                semaphore: Arc::new(Semaphore::new(n as usize)),
                cpu_ticks,
                config,
                ticker_stop,
                pruned: std::sync::Once::new(),
            }),
        })
    }

    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// Compiles (or loads from the cache), links and describes a plugin. `enabled` is its
    /// validated `[plugins.<id>]` section.
    pub async fn load(
        &self,
        manifest: Manifest,
        wasm: Arc<[u8]>,
        enabled: Enabled,
    ) -> Result<Plugin, LoadError> {
        let id = manifest.id.clone();
        let err = |m: String| LoadError::new(&id, m);
        let component = {
            let inner = Arc::clone(&self.inner);
            let wasm = Arc::clone(&wasm);
            let id = id.clone();
            tokio::task::spawn_blocking(move || inner.compile(&id, &wasm))
                .await
                .map_err(|e| err(format!("compiling panicked: {e}")))?
                .map_err(err)?
        };

        let exported = exported_kinds(&self.inner.engine, &component);
        let mut found_versions = Vec::new();
        for (kind, version) in &exported {
            found_versions.push(format!("keel:plugin/{kind}@{version}"));
        }
        for kind in &manifest.kinds {
            match exported.iter().find(|(k, _)| k == kind) {
                Some((_, v)) if SUPPORTED_WIT.contains(&(v.major, v.minor)) => {
                    if (v.major, v.minor) != (manifest.wit.major, manifest.wit.minor) {
                        return Err(err(format!(
                            "plugin.toml says wit {} but the component exports keel:plugin/{kind}@{v}",
                            manifest.wit
                        )));
                    }
                }
                Some((_, v)) => {
                    return Err(err(format!(
                        "built against keel:plugin@{v}, which this host does not serve (it serves {}); \
                         rebuild the plugin with a supported keel-sdk",
                        supported_list()
                    )));
                }
                None => {
                    let exports = if found_versions.is_empty() {
                        "no keel:plugin interface".to_owned()
                    } else {
                        found_versions.join(", ")
                    };
                    return Err(err(format!(
                        "plugin.toml lists kind `{kind}` but the component exports {exports}"
                    )));
                }
            }
        }

        let pre = self.inner.linker.instantiate_pre(&component).map_err(|e| {
            err(format!(
                "the component needs imports this host does not provide: {e:#}"
            ))
        })?;
        let pres =
            Pres::new(&manifest.kinds, &exported, &pre).map_err(|e| err(format!("{e:#}")))?;

        let outbound = Outbound::new(
            enabled.grant.clone(),
            self.inner.config.http.clone(),
            Arc::new(self.inner.config.resolver_overrides.clone()),
            Arc::new(self.inner.config.origin_overrides.clone()),
        )
        .map_err(err)?;
        let shared = Arc::new(Shared {
            id: id.clone(),
            settings: enabled.settings.clone(),
            outbound,
            kv: Arc::clone(&self.inner.config.kv),
            clock: Arc::clone(&self.inner.config.clock),
            log_limits: self.inner.config.log.clone(),
        });
        let plugin = Plugin {
            inner: Arc::new(PluginInner {
                host: Arc::clone(&self.inner),
                shared,
                manifest,
                enabled,
                pres,
                pre,
                info: std::sync::OnceLock::new(),
            }),
        };
        let info = plugin
            .describe()
            .await
            .map_err(|e| err(format!("describe failed: {e}")))?;
        if Version::parse(&info.version) != Some(plugin.inner.manifest.version) {
            return Err(err(format!(
                "the component says version {} but plugin.toml says {}",
                info.version, plugin.inner.manifest.version
            )));
        }
        let _ = plugin.inner.info.set(info);
        Ok(plugin)
    }
}

impl HostInner {
    /// Compiles `wasm` (plugin `id`'s), or loads the artifact this host cached for the same
    /// bytes and engine. Bytes are validated by the compiler before anything runs. A cached
    /// entry's modification time is its last use; caching a new build of `id` removes its
    /// older ones (an author rebuilding a 35 MB Python plugin all day keeps one), and the
    /// first compile of a host removes entries unused for [`CACHE_KEEP`].
    fn compile(&self, id: &str, wasm: &[u8]) -> Result<Component, String> {
        let Some(dir) = &self.config.cache_dir else {
            return Component::new(&self.engine, wasm).map_err(|e| invalid_component(&e));
        };
        let mut hasher = Sha256::new();
        hasher.update(wasm);
        hasher.update(b"\0engine\0");
        std::hash::Hash::hash(
            &self.engine.precompile_compatibility_hash(),
            &mut HashWriter(&mut hasher),
        );
        let key = hex::encode(hasher.finalize());
        self.pruned.call_once(|| prune_cache(dir));
        let path = dir.join(format!("{id}-{key}.cwasm"));
        if path.is_file() {
            match load_cached(&self.engine, &path) {
                Ok(component) => {
                    let _ = std::fs::File::options()
                        .append(true)
                        .open(&path)
                        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                    return Ok(component);
                }
                Err(e) => tracing::warn!(
                    "ignoring the unreadable cached plugin {}: {e}",
                    path.display()
                ),
            }
        }
        let component = Component::new(&self.engine, wasm).map_err(|e| invalid_component(&e))?;
        if let Ok(bytes) = component.serialize() {
            let tmp = dir.join(format!("{key}.{}.tmp", std::process::id()));
            let written = std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&tmp, &bytes))
                .and_then(|()| std::fs::rename(&tmp, &path));
            match written {
                Ok(()) => remove_older_builds(dir, id, &path),
                Err(e) => tracing::warn!(
                    "could not cache the compiled plugin in {}: {e}",
                    dir.display()
                ),
            }
        }
        Ok(component)
    }

    fn new_store(&self, shared: &Arc<Shared>) -> Store<PluginCtx> {
        let output = CappedBuffer::new(shared.log_limits.stderr_bytes);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let ctx = PluginCtx {
            shared: Arc::clone(shared),
            wasi: wasi.build(),
            table: wasmtime::component::ResourceTable::new(),
            limiter: MemoryLimiter::new(self.config.memory_limit_bytes),
            deadline: Instant::now() + self.config.call_timeout,
            requests: 0,
            log_lines: 0,
            log_bytes: 0,
            log_dropped: 0,
            panic_message: None,
            ticks: 0,
            stderr: output,
            logs: Vec::new(),
        };
        let mut store = Store::new(&self.engine, ctx);
        store.limiter(|c| &mut c.limiter);
        store.set_epoch_deadline(1);
        let budget = self.cpu_ticks;
        store.epoch_deadline_callback(move |mut cx| {
            let data = cx.data_mut();
            data.ticks += 1;
            Ok(if data.ticks >= budget {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store
    }
}

/// How long a cached compiled plugin nobody loads is kept.
pub const CACHE_KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// Removes `id`'s cached builds other than `keep`.
fn remove_older_builds(dir: &std::path::Path, id: &str, keep: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{id}-");
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // `<id>-<64 hex digits>.cwasm`: another plugin's id may start with this one's.
        let is_build = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".cwasm"))
            .is_some_and(|hash| hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
        if is_build && path != keep {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(
                    "removed an older build of plugin {id} from the cache: {}",
                    path.display()
                ),
                Err(e) => tracing::warn!("could not remove {}: {e}", path.display()),
            }
        }
    }
}

/// Removes cache entries unused for [`CACHE_KEEP`], and temporary files older than a day
/// (a process killed while writing one).
fn prune_cache(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let keep = if name.ends_with(".cwasm") {
            CACHE_KEEP
        } else if name.ends_with(".tmp") {
            Duration::from_secs(24 * 3600)
        } else {
            continue;
        };
        let unused = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok());
        if unused.is_some_and(|age| age > keep) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// wasmtime's `Component::deserialize_file` is `unsafe` because a crafted file can run
/// arbitrary code; this host only reads files it wrote itself into its own cache
/// directory, named by the hash of the source bytes and the engine configuration.
#[allow(unsafe_code)]
fn load_cached(engine: &Engine, path: &std::path::Path) -> wasmtime::Result<Component> {
    // SAFETY: see above; the file was produced by `Component::serialize` of this engine
    // configuration (the key includes `precompile_compatibility_hash`).
    unsafe { Component::deserialize_file(engine, path) }
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::hash::Hasher for HashWriter<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn invalid_component(e: &wasmtime::Error) -> String {
    format!(
        "could not compile the component (a wasm32-wasip2 component within the host's pool limits?): {e:#}"
    )
}

fn supported_list() -> String {
    SUPPORTED_WIT
        .iter()
        .map(|(a, b)| format!("{a}.{b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `keel:plugin/<kind>@<version>` interfaces a component exports.
fn exported_kinds(engine: &Engine, component: &Component) -> Vec<(Kind, Version)> {
    let mut found = Vec::new();
    for (name, _) in component.component_type().exports(engine) {
        let Some(rest) = name.strip_prefix("keel:plugin/") else {
            continue;
        };
        let Some((iface, version)) = rest.split_once('@') else {
            continue;
        };
        let Some(kind) = Kind::ALL.into_iter().find(|k| k.as_str() == iface) else {
            continue;
        };
        if let Some(v) = Version::parse(version) {
            found.push((kind, v));
        }
    }
    found
}

/// A kind's typed pre-instance, in the minor of `keel:plugin` the component was built
/// against.
#[derive(Clone)]
pub(crate) enum Versioned<Old, Current> {
    V0_1(Old),
    Current(Current),
}

/// One typed pre-instance per kind the plugin implements.
#[derive(Default)]
pub(crate) struct Pres {
    pub(crate) gateway: Option<
        Versioned<
            v0_1::gateway::GatewayPluginPre<PluginCtx>,
            v0_2::gateway::GatewayPluginPre<PluginCtx>,
        >,
    >,
    pub(crate) registrar: Option<
        Versioned<
            v0_1::registrar::RegistrarPluginPre<PluginCtx>,
            v0_2::registrar::RegistrarPluginPre<PluginCtx>,
        >,
    >,
    pub(crate) notifier: Option<
        Versioned<
            v0_1::notifier::NotifierPluginPre<PluginCtx>,
            v0_2::notifier::NotifierPluginPre<PluginCtx>,
        >,
    >,
    pub(crate) provisioner: Option<
        Versioned<
            v0_1::provisioner::ProvisionerPluginPre<PluginCtx>,
            v0_2::provisioner::ProvisionerPluginPre<PluginCtx>,
        >,
    >,
    pub(crate) assistant: Option<
        Versioned<
            v0_1::assistant::AssistantPluginPre<PluginCtx>,
            v0_2::assistant::AssistantPluginPre<PluginCtx>,
        >,
    >,
}

impl Pres {
    /// The typed pre-instances of `kinds`, each in the minor it was built against (`load`
    /// checked that every one is served).
    fn new(
        kinds: &[Kind],
        exported: &[(Kind, Version)],
        pre: &InstancePre<PluginCtx>,
    ) -> wasmtime::Result<Self> {
        let mut pres = Self::default();
        for kind in kinds {
            let old = exported
                .iter()
                .any(|(k, v)| k == kind && (v.major, v.minor) == (0, 1));
            macro_rules! pick {
                ($field:ident, $module:ident, $Pre:ident) => {
                    pres.$field = Some(if old {
                        Versioned::V0_1(v0_1::$module::$Pre::new(pre.clone())?)
                    } else {
                        Versioned::Current(v0_2::$module::$Pre::new(pre.clone())?)
                    })
                };
            }
            match kind {
                Kind::Gateway => pick!(gateway, gateway, GatewayPluginPre),
                Kind::Registrar => pick!(registrar, registrar, RegistrarPluginPre),
                Kind::Notifier => pick!(notifier, notifier, NotifierPluginPre),
                Kind::Provisioner => pick!(provisioner, provisioner, ProvisionerPluginPre),
                Kind::Assistant => pick!(assistant, assistant, AssistantPluginPre),
            }
        }
        Ok(pres)
    }
}

/// A loaded plugin. Cheap to clone; get a kind's handle with [`Plugin::gateway`] and
/// friends.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

pub(crate) struct PluginInner {
    host: Arc<HostInner>,
    shared: Arc<Shared>,
    pub(crate) manifest: Manifest,
    enabled: Enabled,
    pub(crate) pres: Pres,
    /// The untyped pre-instance, for calls by name ([`Plugin::call_json`]).
    pub(crate) pre: InstancePre<PluginCtx>,
    info: std::sync::OnceLock<crate::PluginInfo>,
}

impl Plugin {
    pub fn id(&self) -> &str {
        &self.inner.manifest.id
    }

    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// The settings and effective grant it runs with.
    pub fn enabled(&self) -> &Enabled {
        &self.inner.enabled
    }

    /// What `describe` answered at load.
    pub fn info(&self) -> Option<&crate::PluginInfo> {
        self.inner.info.get()
    }

    /// Runs one call in a fresh store: a pool slot (waiting for one if all are busy), the
    /// memory limiter, the CPU budget, the wall-clock timeout; then maps the outcome to a
    /// typed result, flushes the plugin's stderr into the log and counts the outcome.
    pub(crate) async fn run<T, F>(
        &self,
        kind: Kind,
        op: &'static str,
        f: F,
    ) -> Result<T, PluginFailure>
    where
        T: Send + 'static,
        F: for<'s> FnOnce(
                &'s mut Store<PluginCtx>,
            ) -> BoxFuture<'s, wasmtime::Result<Result<T, PluginError>>>
            + Send
            + 'static,
    {
        self.run_captured(kind, op, f).await.0
    }

    /// [`Plugin::run`], also returning what the plugin wrote to stderr and logged.
    pub(crate) async fn run_captured<T, F>(
        &self,
        kind: Kind,
        op: &'static str,
        f: F,
    ) -> (Result<T, PluginFailure>, Captured)
    where
        T: Send + 'static,
        F: for<'s> FnOnce(
                &'s mut Store<PluginCtx>,
            ) -> BoxFuture<'s, wasmtime::Result<Result<T, PluginError>>>
            + Send
            + 'static,
    {
        let started = Instant::now();
        let host = &self.inner.host;
        let permit = Arc::clone(&host.semaphore).acquire_owned().await;
        let mut store = host.new_store(&self.inner.shared);
        let timeout = host.config.call_timeout;
        // Run on the caller's task and catch a panic in a host function: a spawned task
        // gives the same isolation but costs a cross-thread wake-up per call.
        let task = std::panic::AssertUnwindSafe(async move {
            let _permit = permit;
            let outcome = tokio::time::timeout(timeout, f(&mut store)).await;
            (outcome, store)
        })
        .catch_unwind();
        let id = self.id().to_owned();
        let mut captured = Captured::default();
        let result = match task.await {
            Err(_panic) => Err(PluginFailure::Host(
                "a host function panicked while serving the call".into(),
            )),
            Ok((outcome, mut store)) => {
                let result = match outcome {
                    Err(_elapsed) => Err(PluginFailure::Timeout),
                    Ok(Ok(Ok(value))) => Ok(value),
                    Ok(Ok(Err(plugin_error))) => Err(PluginFailure::Plugin(plugin_error)),
                    Ok(Err(trap)) => Err(classify_trap(&trap, store.data())),
                };
                captured.stderr = flush_output(&id, store.data());
                captured.logs = std::mem::take(&mut store.data_mut().logs);
                result
            }
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(f) => f.label(),
        };
        metrics::counter!("keel_plugin_calls_total", "plugin" => id.clone(), "kind" => kind.as_str(), "op" => op, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("keel_plugin_call_seconds", "plugin" => id.clone(), "kind" => kind.as_str())
            .record(started.elapsed().as_secs_f64());
        if let Err(failure) = &result
            && !matches!(failure, PluginFailure::Plugin(_))
        {
            tracing::warn!(
                plugin = id,
                kind = kind.as_str(),
                op,
                "plugin call failed: {failure}"
            );
        }
        (result, captured)
    }
}

/// What a call wrote to stderr (and stdout) and logged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    pub stderr: String,
    /// `LEVEL message`, in order.
    pub logs: Vec<String>,
}

fn classify_trap(err: &wasmtime::Error, data: &PluginCtx) -> PluginFailure {
    if data.limiter.hit || err.downcast_ref::<MemoryLimitReached>().is_some() {
        return PluginFailure::MemoryLimit;
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PluginFailure::CpuLimit,
        Some(Trap::StackOverflow) => PluginFailure::StackOverflow,
        Some(Trap::UnreachableCodeReached) => PluginFailure::Panic(
            data.panic_message
                .clone()
                .or_else(|| data.stderr.crash_report()),
        ),
        Some(trap) => PluginFailure::Trap(trap.to_string()),
        None => PluginFailure::Trap(format!("{err:#}")),
    }
}

/// Logs the call's stderr and stdout line by line, counts what was dropped, and returns the
/// output kept.
fn flush_output(id: &str, data: &PluginCtx) -> String {
    let (bytes, dropped) = data.stderr.take();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        tracing::warn!(target: "keel::plugin::stderr", plugin = id, "{line}");
    }
    if dropped > 0 {
        metrics::counter!("keel_plugin_output_dropped_bytes_total", "plugin" => id.to_owned())
            .increment(dropped);
        tracing::warn!(
            plugin = id,
            "dropped {dropped} bytes of the plugin's stdout/stderr past the cap"
        );
    }
    if data.log_dropped > 0 {
        metrics::counter!("keel_plugin_log_dropped_total", "plugin" => id.to_owned())
            .increment(data.log_dropped);
        tracing::warn!(
            plugin = id,
            "dropped {} log lines past the per-call budget",
            data.log_dropped
        );
    }
    text
}
