//! The `winmdm` command.

use std::io::{Read as _, Write as _};
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
    /// Decode or validate Entra access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Decode a token without verifying it (clearly labelled UNVERIFIED).
    Inspect {
        /// The token, or - to read it from standard input.
        token: String,
    },
    /// Validate a token against a JWKS and a tenant/audience policy; prints the verified
    /// claims as JSON (exit 0) or the error kind (exit 1).
    Validate {
        /// JWKS document: a file path or an http(s) URL.
        #[arg(long)]
        jwks: String,
        /// Accepted tenant ID (repeatable).
        #[arg(long = "tenant", required = true)]
        tenants: Vec<String>,
        /// Accepted audience (repeatable): the MDM app's client ID or App ID URI.
        #[arg(long = "audience", required = true)]
        audiences: Vec<String>,
        /// Required scope (repeatable), for example mdm_delegation.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Accept v1.0 tokens too.
        #[arg(long)]
        allow_v1: bool,
        /// Validate as of this time (Unix seconds) instead of now.
        #[arg(long)]
        now: Option<u64>,
        /// The token, or - to read it from standard input.
        token: String,
    },
}

fn read_token(arg: &str) -> Result<String, String> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .take(1 << 20)
            .read_to_string(&mut s)
            .map_err(|e| format!("reading standard input: {e}"))?;
        Ok(s)
    } else {
        Ok(arg.to_owned())
    }
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.write_all(b"\n");
}

fn token_command(command: TokenCommand) -> ExitCode {
    use winmdm_cli::token;
    match command {
        TokenCommand::Inspect { token: arg } => {
            let result = read_token(&arg)
                .and_then(|t| token::inspect(&t).map_err(|e| format!("{}: {e}", e.code())));
            match result {
                Ok(text) => {
                    eprintln!("warning: UNVERIFIED token contents (nothing was checked)");
                    print(&text);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("winmdm token inspect: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        TokenCommand::Validate {
            jwks,
            tenants,
            audiences,
            scopes,
            allow_v1,
            now,
            token: arg,
        } => {
            let result = read_token(&arg).and_then(|t| {
                let jwks = token::load_jwks(&jwks).map_err(|e| format!("{}: {e}", e.code()))?;
                let options = token::ValidateOptions {
                    jwks,
                    tenants,
                    audiences,
                    scopes,
                    allow_v1,
                    now,
                };
                token::validate(&t, &options).map_err(|e| format!("{}: {e}", e.code()))
            });
            match result {
                Ok(text) => {
                    print(&text);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("invalid: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
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
        Command::Token(command) => token_command(command),
    }
}
