//! A fake kernel for fast native unit tests of a plugin's logic.
//!
//! In a native build (`cargo test` on the author's machine) the SDK's host calls go to the
//! [`FakeHost`] installed on the current thread: scripted HTTP answers, a settings map, an
//! in-memory kv, captured logs and a fixed clock. Nothing here runs WebAssembly: to test the
//! real component in the real host (limits, grants, the built `.wasm`), use
//! `keel-testkit`'s plugin harness, as Keel's own tests do.
//!
//! ```
//! use keel_sdk::http::{Request, Response};
//! use keel_sdk::testing::FakeHost;
//!
//! let host = FakeHost::new()
//!     .setting("endpoint", "https://hooks.example.com/keel")
//!     .respond(|req| Ok(Response { status: 202, headers: vec![], body: req.body.clone() }))
//!     .install();
//!
//! let url = keel_sdk::config::require("endpoint").unwrap();
//! let reply = Request::post(url).bearer("t0k").body("hi").send().unwrap();
//! assert_eq!(reply.status, 202);
//! let sent = &host.requests()[0];
//! assert_eq!(sent.url, "https://hooks.example.com/keel");
//! assert_eq!(sent.header("Authorization"), Some("Bearer t0k"));
//! assert_eq!(sent.text(), "hi");
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::bindings::host::keel::plugin::http::{Error, Response};
use crate::log::Level;

/// An outbound request as the plugin sent it: what [`FakeHost::respond`]'s closure receives
/// and [`FakeGuard::requests`] returns (`method`, `url`, `headers`, `body`, `timeout_ms`).
pub use crate::bindings::host::keel::plugin::http::Request as SentRequest;

impl SentRequest {
    /// The first header named `name`, compared without case.
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::types::header(&self.headers, name)
    }

    /// The body as UTF-8 text (invalid sequences replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

type Responder = Box<dyn FnMut(&SentRequest) -> Result<Response, Error>>;

/// The fake kernel. Build it, then [`install`](FakeHost::install) it on the test's thread.
pub struct FakeHost {
    settings: BTreeMap<String, String>,
    kv: BTreeMap<String, Vec<u8>>,
    responder: Option<Responder>,
    now_millis: i64,
    state: Rc<RefCell<Recorded>>,
}

/// What the plugin did, for assertions.
#[derive(Default)]
struct Recorded {
    requests: Vec<SentRequest>,
    logs: Vec<(Level, String)>,
}

thread_local! {
    static FAKE: RefCell<Option<FakeHost>> = const { RefCell::new(None) };
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeHost {
    /// No settings, empty kv, every request answered with an error, the clock at
    /// 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self {
            settings: BTreeMap::new(),
            kv: BTreeMap::new(),
            responder: None,
            now_millis: 1_767_225_600_000,
            state: Rc::default(),
        }
    }

    /// Sets a setting as the kernel would pass it (text).
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        self.settings.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Answers every outbound request with `f`.
    pub fn respond(
        mut self,
        f: impl FnMut(&SentRequest) -> Result<Response, Error> + 'static,
    ) -> Self {
        self.responder = Some(Box::new(f));
        self
    }

    /// Puts a value in the kv before the test.
    pub fn kv(mut self, key: &str, value: &[u8]) -> Self {
        self.kv.insert(key.to_owned(), value.to_vec());
        self
    }

    /// Sets the clock, in milliseconds since the Unix epoch.
    pub fn clock_at_millis(mut self, millis: i64) -> Self {
        self.now_millis = millis;
        self
    }

    /// Makes this the fake for the current thread until the guard is dropped.
    pub fn install(self) -> FakeGuard {
        let state = Rc::clone(&self.state);
        FAKE.with(|f| *f.borrow_mut() = Some(self));
        FakeGuard { state }
    }

    pub(crate) fn http_send(&mut self, req: &SentRequest) -> Result<Response, Error> {
        self.state.borrow_mut().requests.push(req.clone());
        match &mut self.responder {
            Some(f) => f(req),
            None => Err(Error::Connection(format!(
                "FakeHost has no responder for {}; add one with FakeHost::respond",
                req.url
            ))),
        }
    }

    pub(crate) fn log(&mut self, level: Level, message: &str) {
        self.state
            .borrow_mut()
            .logs
            .push((level, message.to_owned()));
    }

    pub(crate) fn config_get(&self, key: &str) -> Option<String> {
        self.settings.get(key).cloned()
    }

    pub(crate) fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.kv.get(key).cloned()
    }

    pub(crate) fn kv_set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        if key.len() > 256 {
            return Err("kv keys are at most 256 bytes".into());
        }
        if value.len() > 64 * 1024 {
            return Err("kv values are at most 64 KiB".into());
        }
        self.kv.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    pub(crate) fn kv_delete(&mut self, key: &str) -> bool {
        self.kv.remove(key).is_some()
    }

    pub(crate) fn now(&self) -> String {
        crate::clock::rfc3339_millis(self.now_millis)
    }

    pub(crate) fn now_millis(&self) -> i64 {
        self.now_millis
    }
}

/// Keeps a [`FakeHost`] installed; read what the plugin did through it.
pub struct FakeGuard {
    state: Rc<RefCell<Recorded>>,
}

impl FakeGuard {
    /// Every outbound request, in order.
    pub fn requests(&self) -> Vec<SentRequest> {
        self.state.borrow().requests.clone()
    }

    /// Every log line, in order.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.state.borrow().logs.clone()
    }

    /// A kv value as the plugin left it.
    pub fn kv(&self, key: &str) -> Option<Vec<u8>> {
        FAKE.with(|f| f.borrow().as_ref().and_then(|h| h.kv_get(key)))
    }
}

impl Drop for FakeGuard {
    fn drop(&mut self) {
        FAKE.with(|f| *f.borrow_mut() = None);
    }
}

pub(crate) fn with_fake<R>(f: impl FnOnce(&mut FakeHost) -> R) -> R {
    FAKE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let host = slot.as_mut().expect(
            "keel-sdk: a host call in a native build needs a fake kernel; \
             install one with keel_sdk::testing::FakeHost::new()...install()",
        );
        f(host)
    })
}
