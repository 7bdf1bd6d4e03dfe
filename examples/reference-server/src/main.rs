//! `winmdm-server`: the winmdm reference MDM server.
//!
//! ```text
//! winmdm-server --demo                  # the whole flow against a simulated device
//! winmdm-server                         # serve with embedded emulators and a dev CA
//! winmdm-server --config winmdm.json    # serve with a configuration file
//! ```
//!
//! Flags override environment variables (`WINMDM_*`), which override the file, which
//! overrides the defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use winmdm_reference_server::config::{Config, Secret};

#[derive(Debug, Parser)]
#[command(
    name = "winmdm-server",
    version,
    about = "The winmdm reference MDM server"
)]
struct Args {
    /// Start a fresh server, run the simulated Windows device through the whole flow
    /// against it, print the transcript, and exit 0 only if everything succeeded.
    #[arg(long)]
    demo: bool,
    /// A JSON configuration file.
    #[arg(long, env = "WINMDM_CONFIG")]
    config: Option<PathBuf>,
    /// The data directory (database, development CA, generated secrets).
    #[arg(long, env = "WINMDM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The device-facing HTTPS listener.
    #[arg(long, env = "WINMDM_LISTEN")]
    listen: Option<SocketAddr>,
    /// The admin API listener.
    #[arg(long, env = "WINMDM_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// How devices reach the server (`https://mdm.example.com`).
    #[arg(long, env = "WINMDM_PUBLIC_URL")]
    public_url: Option<String>,
    /// The environment variable holding a PostgreSQL URL (shared storage for several
    /// instances); default: SQLite in the data directory.
    #[arg(long, env = "WINMDM_DATABASE_URL_ENV")]
    database_url_env: Option<String>,
    /// The environment variable holding the admin API's bearer secret.
    #[arg(long, env = "WINMDM_ADMIN_SECRET_ENV")]
    admin_secret_env: Option<String>,
    /// The Entra authority (`https://login.microsoftonline.com`); default: embedded emulator.
    #[arg(long, env = "WINMDM_ENTRA_AUTHORITY")]
    entra_authority: Option<String>,
    /// A tenant whose devices may enroll (repeat for several).
    #[arg(long = "tenant", env = "WINMDM_TENANTS", value_delimiter = ',')]
    tenants: Vec<String>,
    /// An accepted token audience: the MDM app's ID or ID URI (repeat for several).
    #[arg(long = "audience", env = "WINMDM_AUDIENCES", value_delimiter = ',')]
    audiences: Vec<String>,
    /// The Microsoft Graph base URL; default: embedded emulator.
    #[arg(long, env = "WINMDM_GRAPH_URL")]
    graph_url: Option<String>,
    /// The token authority for Graph (default: the Entra authority).
    #[arg(long, env = "WINMDM_GRAPH_AUTHORITY")]
    graph_authority: Option<String>,
    /// The MDM application's client ID (for Graph).
    #[arg(long, env = "WINMDM_GRAPH_CLIENT_ID")]
    graph_client_id: Option<String>,
    /// The environment variable holding the application's client secret.
    #[arg(long, env = "WINMDM_GRAPH_CLIENT_SECRET_ENV")]
    graph_client_secret_env: Option<String>,
    /// The issuing CA's certificate (PEM); with --ca-key.
    #[arg(long, env = "WINMDM_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// The issuing CA's PKCS#8 key (PEM).
    #[arg(long, env = "WINMDM_CA_KEY")]
    ca_key: Option<PathBuf>,
    /// The HTTPS certificate chain (PEM); with --tls-key.
    #[arg(long, env = "WINMDM_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The HTTPS private key (PEM).
    #[arg(long, env = "WINMDM_TLS_KEY")]
    tls_key: Option<PathBuf>,
}

fn secret_from_env(var: &str) -> Result<Secret, String> {
    std::env::var(var)
        .map(Secret)
        .map_err(|_| format!("the environment variable {var} is not set"))
}

fn configure(args: Args) -> Result<Config, String> {
    let mut c = match &args.config {
        Some(path) => Config::from_file(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    macro_rules! set {
        ($field:expr, $value:expr) => {
            if let Some(v) = $value {
                $field = v;
            }
        };
    }
    set!(c.data_dir, args.data_dir);
    set!(c.listen, args.listen);
    set!(c.admin_listen, args.admin_listen);
    if args.public_url.is_some() {
        c.public_url = args.public_url;
    }
    if let Some(var) = args.database_url_env {
        c.database_url = Some(secret_from_env(&var)?);
    }
    if let Some(var) = args.admin_secret_env {
        c.admin_secret = Some(secret_from_env(&var)?);
    }
    if args.entra_authority.is_some() {
        c.entra.authority = args.entra_authority;
    }
    if !args.tenants.is_empty() {
        c.entra.tenants = args.tenants;
    }
    if !args.audiences.is_empty() {
        c.entra.audiences = args.audiences;
    }
    if args.graph_url.is_some() {
        c.graph.url = args.graph_url;
    }
    if args.graph_authority.is_some() {
        c.graph.authority = args.graph_authority;
    }
    set!(c.graph.client_id, args.graph_client_id);
    if let Some(var) = args.graph_client_secret_env {
        c.graph.client_secret = Some(secret_from_env(&var)?);
    }
    if args.ca_cert.is_some() || args.ca_key.is_some() {
        c.ca.cert = args.ca_cert;
        c.ca.key = args.ca_key;
    }
    if args.tls_cert.is_some() || args.tls_key.is_some() {
        c.tls.cert = args.tls_cert;
        c.tls.key = args.tls_key;
    }
    c.check().map_err(|e| e.to_string())?;
    Ok(c)
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(if args.demo {
            tracing::Level::WARN
        } else {
            tracing::Level::INFO
        })
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("winmdm-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.demo {
        let ok = runtime.block_on(winmdm_reference_server::demo::run(&mut std::io::stdout()));
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let config = match configure(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("winmdm-server: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        match winmdm_reference_server::start(config).await {
            Ok(running) => {
                println!("devices: {}", running.public_url);
                println!("admin:   {}", running.admin_url);
                if let Some(entra) = &running.entra {
                    println!("entra emulator (embedded): {}", entra.base_url());
                }
                if let Some(graph) = &running.graph {
                    println!("graph emulator (embedded): {}", graph.base_url());
                }
                let _ = tokio::signal::ctrl_c().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("winmdm-server: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
