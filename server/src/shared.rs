//! What every connection thread shares: the settings, the registry, and the output threads.

use crate::access::Access;
use crate::accounts::Accounts;
use crate::config::Config;
use crate::flusher::Flushers;
use crate::registry::Registry;
use crate::transport::tls::TlsSettings;

pub struct Shared {
    pub config: Config,
    pub access: Access,
    pub accounts: Accounts,
    pub registry: Registry,
    pub flushers: Flushers,
    /// The certificate and key, when TLS is on.
    pub tls: Option<TlsSettings>,
}
