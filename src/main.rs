use clap::Parser;

fn main() -> anyhow::Result<()> {
    stormwatch::cli::run(stormwatch::cli::Cli::parse())
}
