//! Python plugins in tests: finding componentize-py, generating the bindings, building a
//! component. Used by the tests that prove Python plugins and keel-sdk for Python
//! (`core/testkit/tests/python_plugin.rs`, `core/cli/tests/python_kit.rs`).
//!
//! componentize-py (pinned 0.25.1) is `$KEEL_TEST_COMPONENTIZE_PY` (which must run), else
//! `componentize-py` on PATH, else the `componentize_py` module of `python3`. Without it
//! [`componentize_py_or_skip`] fails under CI (`CI=true` or `CI=1`) and warns loudly
//! elsewhere: it is never skipped silently.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The componentize-py version the examples and the docs are written for.
pub const PINNED: &str = "0.25.1";

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A way to run componentize-py: a program and the arguments that come before its own.
pub struct Componentize {
    program: OsString,
    prefix: Vec<OsString>,
    /// What `--version` said.
    pub version: String,
}

impl Componentize {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.prefix);
        cmd
    }

    fn probe(program: OsString, prefix: Vec<OsString>) -> Option<Self> {
        let mut tool = Self {
            program,
            prefix,
            version: String::new(),
        };
        let out = tool.command().arg("--version").output().ok()?;
        out.status.success().then(|| {
            tool.version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            tool
        })
    }

    /// `$KEEL_TEST_COMPONENTIZE_PY` (which must then run: asking for a tool that is not
    /// there is an error, not a skip), else `componentize-py` on PATH, else `python3`'s
    /// module (0.25.1 has no `__main__`, so this calls the console script's entry point).
    pub fn find() -> Option<Self> {
        if let Some(program) =
            std::env::var_os("KEEL_TEST_COMPONENTIZE_PY").filter(|p| !p.is_empty())
        {
            let shown = program.to_string_lossy().into_owned();
            return Some(Self::probe(program, Vec::new()).unwrap_or_else(|| {
                panic!("KEEL_TEST_COMPONENTIZE_PY={shown} does not run (`--version` failed)")
            }));
        }
        Self::probe("componentize-py".into(), Vec::new()).or_else(|| {
            Self::probe(
                "python3".into(),
                vec![
                    "-c".into(),
                    "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())".into(),
                ],
            )
        })
    }

    /// Generates the Python bindings of `world` (`"gateway-plugin"`, ...) of Keel's WIT
    /// into `out`: the `wit_world` package and `componentize_py_types`, which plugin code
    /// and keel-sdk import natively in unit tests.
    pub fn bindings(&self, world: &str, out: &Path) {
        let output = self
            .command()
            .arg("-q")
            .arg("-d")
            .arg(repo_root().join("wit"))
            .args(["-w", world, "bindings"])
            .arg(out)
            .output()
            .expect("run componentize-py bindings");
        assert!(
            output.status.success(),
            "componentize-py bindings failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Builds module `app` of the folder `src` (which the build may write `__pycache__`
    /// into: pass a copy) for `world`, with keel-sdk for Python on the path, into
    /// `wasm`, and returns the component's bytes.
    pub fn build(&self, world: &str, src: &Path, wasm: &Path) -> Vec<u8> {
        let output = self
            .command()
            .current_dir(src)
            .arg("-q")
            .arg("-d")
            .arg(repo_root().join("wit"))
            .args(["-w", world, "componentize", "-p"])
            .arg(src)
            .arg("-p")
            .arg(repo_root().join("sdk/python/src"))
            .arg("app")
            .arg("-o")
            .arg(wasm)
            .output()
            .expect("run componentize-py");
        assert!(
            output.status.success(),
            "componentize-py failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::read(wasm).unwrap_or_else(|e| panic!("reading {}: {e}", wasm.display()))
    }
}

fn is_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// componentize-py, or `None` after a loud warning outside CI. Under CI its absence
/// panics: the Python tests are never skipped silently.
pub fn componentize_py_or_skip() -> Option<Componentize> {
    let Some(tool) = Componentize::find() else {
        let msg = "componentize-py is not installed (not on PATH, nor python3's componentize_py module): \
                   the Python plugin was NOT tested. scripts/test installs it with \
                   `python3 -m pip install componentize-py==0.25.1`.";
        if is_ci() {
            panic!("{msg}");
        }
        eprintln!("\n{bar}\n!!! WARNING: {msg}\n{bar}\n", bar = "!".repeat(78));
        return None;
    };
    if !tool.version.contains(PINNED) {
        eprintln!(
            "note: {} found; the examples are pinned to componentize-py {PINNED}",
            tool.version
        );
    }
    Some(tool)
}
