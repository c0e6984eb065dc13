//! `chathooks dev`: placeholder.
use std::io::Write;
/// `chathooks dev`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {}
/// Watch.
pub fn dev(_args: &DevArgs, _out: &mut dyn Write) -> anyhow::Result<bool> {
    anyhow::bail!("not yet")
}
