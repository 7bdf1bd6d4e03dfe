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
    /// Decode or validate Entra access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Read or check OMA-DM SyncML messages.
    #[command(subcommand)]
    Syncml(SyncmlCommand),
    /// Call Microsoft Graph with the MDM's app registration.
    #[command(subcommand)]
    Graph(GraphCommand),
    /// Inspect certificate requests.
    #[command(subcommand)]
    Csr(CsrCommand),
    /// Read enrollment SOAP messages (discovery, policy, enrollment, faults).
    #[command(subcommand)]
    Soap(SoapCommand),
    /// Run a simulated Windows device against an MDM server: Terms of Use, discovery,
    /// policy, enrollment, OMA-DM sessions, renewal, unenrollment. Exit 1 if a step fails.
    Simulate {
        /// The server's base URL (its Terms-of-Use and discovery URLs are under it).
        #[arg(long)]
        server: String,
        /// Trust this CA (PEM) for the server's certificate.
        #[arg(long)]
        ca: Option<std::path::PathBuf>,
        /// Sign the user in at this Entra emulator (password grant).
        #[arg(
            long,
            conflicts_with = "token_env",
            required_unless_present = "token_env"
        )]
        token_from: Option<String>,
        /// Use the token in this environment variable instead.
        #[arg(long)]
        token_env: Option<String>,
        /// The tenant to sign in to (with --token-from).
        #[arg(long, default_value = "72f988bf-0000-4000-8000-00000000c0de")]
        tenant: String,
        /// The user to sign in (with --token-from).
        #[arg(long, default_value = "alice@contoso.example")]
        user: String,
        /// The device ID (default: random).
        #[arg(long)]
        device_id: Option<String>,
        /// Skip renewal (and the second session).
        #[arg(long)]
        no_renew: bool,
        /// Do not unenroll at the end.
        #[arg(long)]
        no_unenroll: bool,
        /// Behave as published Windows 11 captures show (32-hex DeviceID, one status per
        /// target, hexadecimal SessionIDs, Windows' query and headers, alert 1223 for a
        /// result over the server's MaxMsgSize).
        #[arg(long)]
        windows_11: bool,
        /// Join Entra in OOBE: show the Enrollment Status Page's progress (device setup,
        /// then account setup after sign-in) until the server releases it.
        #[arg(long)]
        oobe: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CsrCommand {
    /// Print a PKCS#10 request (PEM, DER or base64): subject, key, extensions (with the
    /// Windows DeviceID), and whether its signature verifies (exit 1 when it does not).
    Inspect {
        /// The file, or - for standard input.
        file: String,
    },
}

#[derive(Debug, Subcommand)]
enum SoapCommand {
    /// Decode an enrollment message; tokens and secrets are redacted.
    Decode {
        /// The file, or - for standard input.
        file: String,
    },
}

#[derive(Debug, Subcommand)]
enum GraphCommand {
    /// Report a device's managed/compliant state (PATCH isManaged/isCompliant) and print
    /// the HTTP outcome; exit 1 on failure.
    ReportCompliance {
        /// The device's tenant ID.
        #[arg(long)]
        tenant: String,
        /// The device: its Entra device ID or its directory object ID (tried in that order
        /// unless --by says which).
        #[arg(long)]
        device: String,
        /// How --device is meant.
        #[arg(long, value_enum, default_value = "auto")]
        by: DeviceBy,
        /// isCompliant.
        #[arg(long, action = clap::ArgAction::Set)]
        compliant: bool,
        /// isManaged.
        #[arg(long, action = clap::ArgAction::Set, default_value_t = true)]
        managed: bool,
        /// The app registration's client ID.
        #[arg(long)]
        client_id: String,
        /// Read the client secret from this environment variable.
        #[arg(long, conflicts_with_all = ["cert", "key"], required_unless_present = "cert")]
        client_secret_env: Option<String>,
        /// The certificate credential (PEM).
        #[arg(long, requires = "key")]
        cert: Option<String>,
        /// Its PKCS#8 private key (PEM).
        #[arg(long, requires = "cert")]
        key: Option<String>,
        /// The Entra authority.
        #[arg(long, default_value = "https://login.microsoftonline.com")]
        authority: String,
        /// The Microsoft Graph base URL (national clouds have their own).
        #[arg(long, default_value = "https://graph.microsoft.com/v1.0")]
        graph_url: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DeviceBy {
    Auto,
    DeviceId,
    ObjectId,
}

fn graph_command(command: GraphCommand) -> ExitCode {
    use winmdm_cli::graph::{CliCredential, DeviceKey, ReportOptions, report_compliance};
    let GraphCommand::ReportCompliance {
        tenant,
        device,
        by,
        compliant,
        managed,
        client_id,
        client_secret_env,
        cert,
        key,
        authority,
        graph_url,
    } = command;
    let credential = match (client_secret_env, cert, key) {
        (Some(var), _, _) => CliCredential::SecretEnv(var),
        (None, Some(cert), Some(key)) => CliCredential::Certificate { cert, key },
        _ => {
            eprintln!(
                "winmdm graph report-compliance: give --client-secret-env or --cert and --key"
            );
            return ExitCode::FAILURE;
        }
    };
    let opts = ReportOptions {
        tenant,
        device,
        key: match by {
            DeviceBy::Auto => DeviceKey::Auto,
            DeviceBy::DeviceId => DeviceKey::DeviceId,
            DeviceBy::ObjectId => DeviceKey::ObjectId,
        },
        compliant,
        managed,
        client_id,
        credential,
        authority,
        graph_url,
    };
    match report_compliance(&opts) {
        Ok(line) => {
            print(&line);
            ExitCode::SUCCESS
        }
        Err(line) => {
            println!("failed: {line}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Subcommand)]
enum SyncmlCommand {
    /// Decode a message (or a SyncHdr, SyncBody or command) into readable text or JSON.
    Decode {
        /// Print the typed model as JSON.
        #[arg(long)]
        json: bool,
        /// The file, or - for standard input.
        file: String,
    },
    /// Report conformance findings; exit 1 when there are errors, 0 when clean or only
    /// warnings.
    Check {
        /// The file, or - for standard input.
        file: String,
    },
}

fn read_input(arg: &str) -> Result<Vec<u8>, String> {
    winmdm_cli::input::read(arg)
}

fn syncml_command(command: SyncmlCommand) -> ExitCode {
    use winmdm_cli::syncml;
    match command {
        SyncmlCommand::Decode { json, file } => {
            let result = read_input(&file).and_then(|bytes| {
                if json {
                    syncml::decode_json(&bytes)
                } else {
                    syncml::decode_text(&bytes)
                }
                .map_err(|e| e.to_string())
            });
            match result {
                Ok(text) => {
                    print(text.trim_end());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("winmdm syncml decode: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        SyncmlCommand::Check { file } => {
            match read_input(&file).and_then(|b| syncml::check(&b).map_err(|e| e.to_string())) {
                Ok((report, errors)) => {
                    print(report.trim_end());
                    if errors {
                        ExitCode::FAILURE
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => {
                    println!("error: not decodable: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
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
        /// Whose tokens to accept: a signed-in user's (what an MDM receives), an
        /// application's (app-only, such as a Graph token), or either.
        #[arg(long, value_enum, default_value = "users")]
        principals: PrincipalsArg,
        /// The token, or - to read it from standard input.
        token: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PrincipalsArg {
    Users,
    Applications,
    Any,
}

impl From<PrincipalsArg> for winmdm_entra::Principals {
    fn from(p: PrincipalsArg) -> Self {
        match p {
            PrincipalsArg::Users => Self::Users,
            PrincipalsArg::Applications => Self::Applications,
            PrincipalsArg::Any => Self::Any,
        }
    }
}

fn read_token(arg: &str) -> Result<String, String> {
    if arg == "-" {
        String::from_utf8(read_input(arg)?).map_err(|_| "standard input is not UTF-8".to_owned())
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
            principals,
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
                    principals: principals.into(),
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
        Command::Simulate {
            server,
            ca,
            token_from,
            token_env,
            tenant,
            user,
            device_id,
            no_renew,
            no_unenroll,
            windows_11,
            oobe,
        } => {
            let token = match (token_from, token_env) {
                (Some(url), _) => winmdm_cli::simulate::TokenChoice::Emulator { url, tenant, user },
                (None, Some(var)) => winmdm_cli::simulate::TokenChoice::Env(var),
                (None, None) => {
                    eprintln!("winmdm simulate: give --token-from or --token-env");
                    return ExitCode::from(2);
                }
            };
            let opts = winmdm_cli::simulate::SimulateOptions {
                server,
                ca,
                token,
                device_id,
                renew: !no_renew,
                unenroll: !no_unenroll,
                windows11: windows_11,
                oobe,
            };
            match winmdm_cli::simulate::simulate(&opts, &mut std::io::stdout()) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("winmdm simulate: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Syncml(command) => syncml_command(command),
        Command::Graph(command) => graph_command(command),
        Command::Csr(CsrCommand::Inspect { file }) => {
            match read_input(&file).and_then(|d| winmdm_cli::enroll::csr_inspect(&d)) {
                Ok((text, verifies)) => {
                    print(text.trim_end());
                    if verifies {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("winmdm csr inspect: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Soap(SoapCommand::Decode { file }) => {
            match read_input(&file).and_then(|d| winmdm_cli::enroll::soap_decode(&d)) {
                Ok(text) => {
                    print(text.trim_end());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("winmdm soap decode: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
