//! The `winmdm` command.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Debugging tool for Windows MDM servers built with winmdm.
#[derive(Debug, Parser)]
#[command(name = "winmdm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Explain a Windows enrollment error: 0x80180014, 80180014, decimal, negative i32,
    /// a name such as MENROLL_E_DEVICECAPREACHED, or rejectedTermsOfUse.
    Explain {
        /// The code or name to look up (negative decimals such as -2145910764 are fine).
        #[arg(allow_negative_numbers = true)]
        code: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Explain { code } => match winmdm_cli::explain::explain(&code) {
            Ok(found) => {
                let mut out = std::io::stdout().lock();
                // A closed pipe (`winmdm explain … | head`) is not an error worth a panic.
                let _ = out.write_all(winmdm_cli::explain::render(&found).as_bytes());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("winmdm explain: {err}");
                ExitCode::FAILURE
            }
        },
    }
}
