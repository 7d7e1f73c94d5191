//! `switchboard`: the command-line client (filled in by the CLI work).

fn main() -> anyhow::Result<()> {
    Ok(())
}
