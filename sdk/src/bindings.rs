//! The generated bindings, one module per world. Not part of the SDK's API: plugin code
//! uses the curated re-exports in the kind modules and the helpers.
//!
//! The host interfaces (`types`, `http`, `log`, `config`, `kv`, `clock`) are generated once,
//! in [`host`], and every kind's world points at them with `with:`, so there is one `Money`
//! and one `PluginError` whatever the kind. Each kind's world gets its own export macro
//! (`pub_export_macro`), so a plugin that expands `export_gateway!` exports only the
//! gateway: the import-only part of every world sits in the SDK's custom section, the
//! export part travels inside the macro.

#![allow(missing_docs, clippy::all, unsafe_code)]

pub mod host {
    wit_bindgen::generate!({
        world: "host",
        path: "../wit",
        runtime_path: "::keel_sdk::__wit_bindgen::rt",
        bitflags_path: "::keel_sdk::__wit_bindgen::rt::bitflags",
        additional_derives: [PartialEq],
    });
}

macro_rules! kind_world {
    ($module:ident, $world:literal, $macro_name:literal, $default:literal) => {
        pub mod $module {
            wit_bindgen::generate!({
                world: $world,
                path: "../wit",
                runtime_path: "::keel_sdk::__wit_bindgen::rt",
        bitflags_path: "::keel_sdk::__wit_bindgen::rt::bitflags",
                additional_derives: [PartialEq],
                pub_export_macro: true,
                export_macro_name: $macro_name,
                default_bindings_module: $default,
                with: {
                    "keel:plugin/types@0.2.0": crate::bindings::host::keel::plugin::types,
                    "keel:plugin/http@0.2.0": crate::bindings::host::keel::plugin::http,
                    "keel:plugin/log@0.2.0": crate::bindings::host::keel::plugin::log,
                    "keel:plugin/config@0.2.0": crate::bindings::host::keel::plugin::config,
                    "keel:plugin/kv@0.2.0": crate::bindings::host::keel::plugin::kv,
                    "keel:plugin/clock@0.2.0": crate::bindings::host::keel::plugin::clock,
                },
            });
        }
    };
}

kind_world!(
    gateway,
    "gateway-plugin",
    "export",
    "::keel_sdk::bindings::gateway"
);
kind_world!(
    registrar,
    "registrar-plugin",
    "export",
    "::keel_sdk::bindings::registrar"
);
kind_world!(
    notifier,
    "notifier-plugin",
    "export",
    "::keel_sdk::bindings::notifier"
);
kind_world!(
    provisioner,
    "provisioner-plugin",
    "export",
    "::keel_sdk::bindings::provisioner"
);
kind_world!(
    assistant,
    "assistant-plugin",
    "export",
    "::keel_sdk::bindings::assistant"
);
