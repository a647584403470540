//! What every connection thread shares: the settings, the registry, and the output threads.

use std::sync::Arc;

use crate::access::Access;
use crate::accounts::Accounts;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::flusher::Flushers;
use crate::registry::Registry;
use crate::transport::tls::TlsSettings;

pub struct Shared {
    pub config: Config,
    pub access: Access,
    pub accounts: Arc<Accounts>,
    pub registry: Arc<Registry>,
    /// With `--cluster`: the link to the other servers through Redis.
    pub cluster: Option<Arc<Cluster>>,
    pub flushers: Flushers,
    /// The certificate and key, when TLS is on.
    pub tls: Option<TlsSettings>,
}
