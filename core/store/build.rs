//! `sqlx::migrate!` embeds `migrations/` when keel-store compiles; cargo does not know the
//! macro reads that folder, so a migration added or changed there would leave a binary (and
//! `keel_store::constraints`' view of the schema) built from the old set. Rebuild on any
//! change in it.
fn main() {
    println!("cargo::rerun-if-changed=../../migrations");
}
