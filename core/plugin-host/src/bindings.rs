//! wasmtime bindings for `keel:plugin@0.1.0`, one module per supported WIT minor.
//!
//! The host interfaces are generated once (`v0_1::host`) and every kind's world points at
//! them with `with:`, so one `PluginCtx` implementation serves every kind. A later minor
//! (`0.2`) gets its own module beside this one, sharing the host implementation through
//! `with:` and converting its types into the current ones (Zed's `since_v0_x` pattern).

#![allow(unsafe_code, missing_docs, clippy::all)]

pub mod v0_1 {
    pub mod host {
        wasmtime::component::bindgen!({
            world: "host",
            path: "../../wit",
            imports: { default: async },
            additional_derives: [PartialEq],
        });
    }

    macro_rules! kind_world {
        ($module:ident, $world:literal) => {
            pub mod $module {
                wasmtime::component::bindgen!({
                    world: $world,
                    path: "../../wit",
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

    kind_world!(gateway, "gateway-plugin");
    kind_world!(registrar, "registrar-plugin");
    kind_world!(notifier, "notifier-plugin");
    kind_world!(provisioner, "provisioner-plugin");
    kind_world!(assistant, "assistant-plugin");
}
