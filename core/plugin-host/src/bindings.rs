//! wasmtime bindings, one module per supported minor of `keel:plugin`.
//!
//! - [`v0_2`] is the current minor, generated from `wit/` at the repository root. The rest
//!   of the host and of Keel speaks its types.
//! - [`v0_1`] is generated from the frozen copy in `core/plugin-host/wit/0.1/`, never
//!   edited. A component built against 0.1 is run through these bindings and its values
//!   are converted to and from the current ones ([`crate::compat`]), as Zed does with its
//!   `since_v0_x` modules.
//!
//! In each minor the host interfaces are generated once (`host`) and every kind's world
//! points at them with `with:`, so one `PluginCtx` implementation per minor serves every
//! kind (the 0.1 one delegates to the current one).

#![allow(unsafe_code, missing_docs, clippy::all)]

macro_rules! host_world {
    ($path:literal) => {
        pub mod host {
            wasmtime::component::bindgen!({
                world: "host",
                path: $path,
                imports: { default: async },
                additional_derives: [PartialEq],
            });
        }
    };
}

macro_rules! kind_world {
    ($path:literal, $module:ident, $world:literal) => {
        pub mod $module {
            wasmtime::component::bindgen!({
                world: $world,
                path: $path,
                imports: { default: async },
                exports: { default: async },
                additional_derives: [PartialEq],
                with: {
                    "keel:plugin/types": super::host::keel::plugin::types,
                    "keel:plugin/http": super::host::keel::plugin::http,
                    "keel:plugin/log": super::host::keel::plugin::log,
                    "keel:plugin/config": super::host::keel::plugin::config,
                    "keel:plugin/kv": super::host::keel::plugin::kv,
                    "keel:plugin/clock": super::host::keel::plugin::clock,
                },
            });
        }
    };
}

macro_rules! minor {
    ($path:literal) => {
        host_world!($path);
        kind_world!($path, gateway, "gateway-plugin");
        kind_world!($path, registrar, "registrar-plugin");
        kind_world!($path, notifier, "notifier-plugin");
        kind_world!($path, provisioner, "provisioner-plugin");
        kind_world!($path, assistant, "assistant-plugin");
    };
}

/// `keel:plugin@0.2.0`, the current minor.
pub mod v0_2 {
    minor!("../../wit");
}

/// `keel:plugin@0.1.0`, served for plugins built before 0.2.
pub mod v0_1 {
    minor!("wit/0.1");
}
