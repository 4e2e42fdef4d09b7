//! Builds every plugin crate under `plugins/` (and the test fixtures under
//! `plugins/fixtures/`, and the Rust plugins under `examples/`) for `wasm32-wasip2`, in one
//! nested cargo call, and writes `gen.rs` with their paths and, for the shipped plugins,
//! their bytes and manifests.
//!
//! The traps this avoids (see ../../../shared/PLUGINS.md, section 3):
//! - the nested cargo gets its own target directory (OUT_DIR/wasm): sharing the outer one
//!   deadlocks on the build-directory lock;
//! - host flags do not leak into the wasm build (RUSTFLAGS, CARGO_ENCODED_RUSTFLAGS,
//!   CARGO_BUILD_TARGET, RUSTC_WORKSPACE_WRAPPER are removed);
//! - no recursion (KEEL_NESTED_PLUGIN_BUILD, and no plugin depends on this crate);
//! - plugins rebuild when their sources, the SDK or the WIT change (rerun-if-changed);
//! - a missing wasm32-wasip2 target fails with the command that adds it.
//!
//! `KEEL_SKIP_PLUGIN_BUILD=1` (for editors running `cargo check`) writes placeholders whose
//! use fails loudly; it is refused under `CI=true`.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "plugin";

struct Plugin {
    /// The crate's package name.
    package: String,
    /// The crate's directory.
    dir: PathBuf,
    /// Its `plugin.toml`: in `dir`, or the folder above for an example written in several
    /// languages (`examples/<name>/rust/` beside `examples/<name>/python/`).
    manifest: PathBuf,
    /// Under plugins/fixtures/ or examples/: built for tests, never shipped.
    fixture: bool,
}

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().unwrap();
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());

    for watched in ["plugins", "sdk", "wit", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=KEEL_SKIP_PLUGIN_BUILD");

    if env::var_os("KEEL_NESTED_PLUGIN_BUILD").is_some() {
        // Only reachable if a plugin depended on this crate; keep the recursion finite.
        fs::write(out_dir.join("gen.rs"), placeholder(&[])).unwrap();
        return;
    }

    let plugins = discover(&root);
    // Only the examples' own crates and manifests: examples/ also holds a JS example's
    // node_modules, which a watched directory would have cargo scan on every build.
    for p in plugins
        .iter()
        .filter(|p| p.dir.starts_with(root.join("examples")))
    {
        println!("cargo:rerun-if-changed={}", p.dir.display());
        println!("cargo:rerun-if-changed={}", p.manifest.display());
    }

    if env::var("KEEL_SKIP_PLUGIN_BUILD").is_ok_and(|v| v == "1") {
        if matches!(env::var("CI").as_deref(), Ok("true" | "1")) {
            panic!("KEEL_SKIP_PLUGIN_BUILD=1 is for editors; CI must build the plugins");
        }
        println!("cargo:warning=KEEL_SKIP_PLUGIN_BUILD=1: plugins not built; using them panics");
        fs::write(out_dir.join("gen.rs"), placeholder(&plugins)).unwrap();
        return;
    }

    check_target();

    let wasm_dir = out_dir.join("wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--locked",
            "--profile",
            PROFILE,
            "--target",
            TARGET,
        ])
        .arg("--target-dir")
        .arg(&wasm_dir);
    for p in &plugins {
        cmd.args(["-p", &p.package]);
    }
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_BUILD_DIR",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    // Profile settings of the outer build (CARGO_PROFILE_*) would also reach the child.
    for (key, _) in env::vars_os() {
        if key.to_string_lossy().starts_with("CARGO_PROFILE_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("KEEL_NESTED_PLUGIN_BUILD", "1");
    if env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.split('\x1f').any(|f| f == "-Dwarnings"))
    {
        cmd.env("RUSTFLAGS", "-Dwarnings");
    }

    let status = cmd.status().expect("run the nested cargo for the plugins");
    if !status.success() {
        panic!("building the plugins for {TARGET} failed (see the cargo output above)");
    }

    let built = wasm_dir.join(TARGET).join(PROFILE);
    for p in &plugins {
        let d = built.join(format!("{}.d", p.package.replace('-', "_")));
        if let Ok(deps) = fs::read_to_string(&d) {
            for file in dep_files(&deps) {
                if !file.starts_with(&wasm_dir) {
                    println!("cargo:rerun-if-changed={}", file.display());
                }
            }
        }
    }
    fs::write(out_dir.join("gen.rs"), generated(&plugins, &built)).unwrap();
}

/// Every crate directly under plugins/ and plugins/fixtures/ that has a Cargo.toml, and
/// every example under examples/ that is a Rust plugin: a `plugin.toml` with a Cargo.toml
/// beside it or in `rust/` below it. (Each must be a workspace member: the nested build
/// names them with `-p`.)
fn discover(root: &Path) -> Vec<Plugin> {
    let mut found = Vec::new();
    for (dir, fixture) in [
        (root.join("plugins"), false),
        (root.join("plugins/fixtures"), true),
    ] {
        for crate_dir in subdirectories(&dir) {
            if let Some(package) = package_in(&crate_dir) {
                found.push(Plugin {
                    package,
                    manifest: crate_dir.join("plugin.toml"),
                    dir: crate_dir,
                    fixture,
                });
            }
        }
    }
    for example in subdirectories(&root.join("examples")) {
        let manifest = example.join("plugin.toml");
        if !manifest.is_file() {
            continue;
        }
        for crate_dir in [example.clone(), example.join("rust")] {
            if let Some(package) = package_in(&crate_dir) {
                found.push(Plugin {
                    package,
                    dir: crate_dir,
                    manifest: manifest.clone(),
                    fixture: true,
                });
            }
        }
    }
    found
}

/// The directories directly in `dir`, sorted.
fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The package name of the crate in `dir`, if `dir` holds a Cargo.toml.
fn package_in(dir: &Path) -> Option<String> {
    let manifest = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest).ok()?;
    Some(package_name(&text).unwrap_or_else(|| panic!("no package name in {}", manifest.display())))
}

/// The `name` of the `[package]` table.
fn package_name(cargo_toml: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(cargo_toml).ok()?;
    Some(table.get("package")?.get("name")?.as_str()?.to_owned())
}

fn check_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .expect("run rustc --print target-libdir");
    let libdir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || libdir.is_empty() || !Path::new(&libdir).is_dir() {
        panic!(
            "\n\nKeel's plugins are built for {TARGET}, which this toolchain does not have.\n\
             Add it with:\n\n    rustup target add {TARGET}\n\n\
             (rust-toolchain.toml lists it, but rustup installs listed targets only when it \
             may install toolchains automatically.)\n"
        );
    }
}

/// The files a cargo dep-info file lists (`target: dep dep …`, spaces escaped with `\`).
fn dep_files(deps: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for line in deps.lines() {
        let Some((_, rest)) = line.split_once(": ") else {
            continue;
        };
        let mut current = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    current.push(' ');
                    chars.next();
                }
                ' ' => {
                    if !current.is_empty() {
                        files.push(PathBuf::from(std::mem::take(&mut current)));
                    }
                }
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            files.push(PathBuf::from(current));
        }
    }
    files
}

fn const_name(package: &str) -> String {
    package.to_uppercase().replace('-', "_")
}

fn generated(plugins: &[Plugin], built: &Path) -> String {
    let mut out = String::from("// @generated by keel-plugins/build.rs\n\n");
    let mut shipped = String::new();
    for p in plugins {
        let wasm = built.join(format!("{}.wasm", p.package.replace('-', "_")));
        assert!(
            wasm.is_file(),
            "the nested build did not produce {}",
            wasm.display()
        );
        let manifest = &p.manifest;
        assert!(manifest.is_file(), "{} has no plugin.toml", p.dir.display());
        let name = const_name(&p.package);
        writeln!(
            out,
            "/// `{pkg}`\npub const {name}: Artifact = Artifact {{ package: {pkg:?}, wasm_path: {wasm:?}, \
             manifest_path: {manifest:?}, fixture: {fixture} }};",
            pkg = p.package,
            wasm = wasm.display().to_string(),
            manifest = manifest.display().to_string(),
            fixture = p.fixture,
        )
        .unwrap();
        if !p.fixture {
            writeln!(
                shipped,
                "    Shipped {{ artifact: {name}, wasm: include_bytes!({wasm:?}), manifest: include_str!({manifest:?}) }},",
                wasm = wasm.display().to_string(),
                manifest = manifest.display().to_string(),
            )
            .unwrap();
        }
    }
    writeln!(out, "\n/// The plugins shipped inside the `keel` binary.\npub const SHIPPED: &[Shipped] = &[\n{shipped}];").unwrap();
    writeln!(out, "\n/// Every built plugin, shipped ones and test fixtures.\npub const ALL: &[Artifact] = &[{}];",
        plugins.iter().map(|p| const_name(&p.package)).collect::<Vec<_>>().join(", ")).unwrap();
    writeln!(out, "\n/// The nested build's target directory (for test harnesses that build more plugins).\npub const WASM_TARGET_DIR: &str = {:?};",
        built.parent().unwrap().parent().unwrap().display().to_string()).unwrap();
    out
}

fn placeholder(plugins: &[Plugin]) -> String {
    let mut out =
        String::from("// @generated by keel-plugins/build.rs (KEEL_SKIP_PLUGIN_BUILD=1)\n\n");
    for p in plugins {
        writeln!(
            out,
            "pub const {}: Artifact = Artifact {{ package: {:?}, wasm_path: \"\", manifest_path: \"\", fixture: {} }};",
            const_name(&p.package),
            p.package,
            p.fixture
        )
        .unwrap();
    }
    out.push_str("pub const SHIPPED: &[Shipped] = &[];\npub const ALL: &[Artifact] = &[];\npub const WASM_TARGET_DIR: &str = \"\";\n");
    out
}
