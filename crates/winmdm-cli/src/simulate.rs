//! `winmdm simulate`: the testkit's simulated Windows device against a server, step by
//! step (Terms of Use, discovery, policy, enrollment, management sessions, renewal,
//! unenrollment), printing each step's HTTP status, time and outcome.

use std::io::Write;
use std::path::PathBuf;

use winmdm_testkit::entra;
use winmdm_testkit::simulator::{self, SimulatorConfig, TokenSource};

/// Where the device's user token comes from.
#[derive(Debug, Clone)]
pub enum TokenChoice {
    /// An Entra emulator's password grant (`--token-from`).
    Emulator {
        /// The emulator's base URL.
        url: String,
        /// The tenant (ID or domain).
        tenant: String,
        /// The user's UPN.
        user: String,
    },
    /// A ready token in an environment variable (`--token-env`).
    Env(String),
}

/// What `winmdm simulate` was asked.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// The MDM's base URL.
    pub server: String,
    /// Extra trust roots (PEM file).
    pub ca: Option<PathBuf>,
    /// The token.
    pub token: TokenChoice,
    /// The device ID (random when absent).
    pub device_id: Option<String>,
    /// Renew the certificate and run a second session.
    pub renew: bool,
    /// Send the 1226 unenroll alert at the end.
    pub unenroll: bool,
    /// The Windows 11 profile ([`SimulatorConfig::windows11`]).
    pub windows11: bool,
    /// Join Entra in OOBE and follow the Enrollment Status Page ([`SimulatorConfig::oobe`]).
    pub oobe: bool,
}

/// Runs the simulation, writing one line per step to `out`; `Ok(true)` when every step
/// succeeded.
///
/// # Errors
/// Unusable options (unreadable CA file, unset variable), as text.
pub fn simulate(opts: &SimulateOptions, out: &mut dyn Write) -> Result<bool, String> {
    let token = match &opts.token {
        TokenChoice::Emulator { url, tenant, user } => TokenSource::Password {
            authority: url.trim_end_matches('/').to_owned(),
            tenant: tenant.clone(),
            username: user.clone(),
            password: entra::USER_PASSWORD.to_owned(),
            scope: format!("{}/.default", entra::MDM_APP_ID),
        },
        TokenChoice::Env(var) => TokenSource::Fixed(
            std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))?,
        ),
    };
    let mut config = if opts.windows11 {
        SimulatorConfig::windows11(&opts.server, token)
    } else {
        SimulatorConfig::new(&opts.server, token)
    };
    if let Some(path) = &opts.ca {
        config.ca_pem = Some(crate::input::read_text(&path.to_string_lossy())?);
    }
    if let Some(id) = &opts.device_id {
        config.device_id.clone_from(id);
    }
    config.oobe = opts.oobe;
    config.renew = opts.renew;
    config.unenroll = opts.unenroll;
    let _ = writeln!(out, "device {} → {}", config.device_id, config.server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let transcript = runtime.block_on(simulator::run(config, |step| {
        let _ = writeln!(out, "{step}");
    }));
    Ok(transcript.succeeded())
}
