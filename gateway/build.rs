//! Rebuilds the gateway when a migration changes: `sqlx::migrate!` embeds the `migrations/`
//! folder at compile time, and cargo does not otherwise know the macro read it.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
