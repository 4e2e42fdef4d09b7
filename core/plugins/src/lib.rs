//! Keel's plugins as built artifacts.
//!
//! The build script compiles every crate under `plugins/` (shipped), `plugins/fixtures/`
//! (test-only) and the Rust plugins under `examples/` (test-only: `examples/<name>/` or
//! `examples/<name>/rust/`, beside the example's `plugin.toml`) for `wasm32-wasip2` in one
//! nested cargo call, so the normal `cargo build` produces them. Shipped plugins are
//! embedded in the binary ([`SHIPPED`]); fixtures and examples are only paths, for tests.
//! No `.wasm` is committed.

/// One built plugin component.
#[derive(Debug, Clone, Copy)]
pub struct Artifact {
    /// The crate's package name.
    pub package: &'static str,
    /// The built component.
    pub wasm_path: &'static str,
    /// Its `plugin.toml`.
    pub manifest_path: &'static str,
    /// A test fixture or an example, never shipped.
    pub fixture: bool,
}

impl Artifact {
    /// The component's bytes, read from the build output.
    pub fn wasm(&self) -> std::io::Result<Vec<u8>> {
        self.check();
        std::fs::read(self.wasm_path)
    }

    /// The manifest's text.
    pub fn manifest(&self) -> std::io::Result<String> {
        self.check();
        std::fs::read_to_string(self.manifest_path)
    }

    fn check(&self) {
        assert!(
            !self.wasm_path.is_empty(),
            "plugin `{}` was not built (KEEL_SKIP_PLUGIN_BUILD=1 was set for this build)",
            self.package
        );
    }
}

/// A plugin embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct Shipped {
    pub artifact: Artifact,
    /// The component.
    pub wasm: &'static [u8],
    /// `plugin.toml`.
    pub manifest: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/gen.rs"));
