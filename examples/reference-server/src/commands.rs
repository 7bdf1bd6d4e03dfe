//! Commands as the admin API and the configuration write them (JSON): winmdm-endpoint's
//! [`CommandSpec`], re-exported.

pub use winmdm_endpoint::commands::CommandSpec;
