//! `kommerce-operator`: runs the controllers (`run`, the default) or writes the CRD YAML
//! (`crdgen`). Everything else lives in the library.

use clap::Parser;
use kommerce_operator::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.into_command() {
        Command::Run(settings) => kommerce_operator::run(settings).await,
        Command::Crdgen(args) => kommerce_operator::crdgen::write(&args),
    }
}
