use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Kubernetes operator for CSP partners: lets customers buy their own Azure reservations.
#[derive(Parser)]
#[command(name = "csp-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the four CRDs as YAML (or write one file per kind with --dir).
    Crd {
        /// Write `<plural>.yaml` files into this folder instead of printing.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crd { dir } => crd(dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn crd(dir: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    match dir {
        None => print!("{}", csp_operator::api::crds_yaml()?),
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            for (name, yaml) in csp_operator::api::crd_files()? {
                std::fs::write(dir.join(name), yaml)?;
            }
        }
    }
    Ok(())
}
