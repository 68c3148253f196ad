//! `alluxio-operator`: today only `crds`, which writes the
//! CustomResourceDefinitions generated from the Rust types.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "alluxio-operator",
    version,
    about = "The alluxio-rs Kubernetes operator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the CRDs as YAML files into a directory (or to stdout).
    Crds {
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() {
    match Cli::parse().command {
        Command::Crds { out } => {
            for (name, yaml) in alluxio_operator::crd::crd_files() {
                match &out {
                    Some(dir) => {
                        let path = dir.join(name);
                        if let Err(e) =
                            std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&path, &yaml))
                        {
                            eprintln!("Error: cannot write {}: {e}", path.display());
                            std::process::exit(1);
                        }
                    }
                    None => print!("---\n{yaml}"),
                }
            }
        }
    }
}
