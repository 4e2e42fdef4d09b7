//! What every exported call does first.

/// Installs, once per instance, a panic hook that sends the panic message to the kernel's
/// log: on `wasm32` a panic aborts into a trap that carries no message.
#[doc(hidden)]
pub fn enter() {
    #[cfg(target_family = "wasm")]
    {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                crate::log::log(
                    crate::log::Level::Error,
                    &format!("plugin panicked: {info}"),
                );
            }));
        });
    }
}
