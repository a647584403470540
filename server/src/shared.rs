//! What every connection thread shares: the settings, the registry, and the output threads.

use std::ffi::OsString;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::access::Access;
use crate::accounts::Accounts;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::flusher::Flushers;
use crate::registry::Registry;
use crate::transport::tls::TlsSettings;

pub struct Shared {
    /// The settings in force: a reload (SIGHUP) replaces them for what comes after.
    config: RwLock<Arc<Config>>,
    /// The command line the server started with, read again with the file on a reload.
    pub args: Vec<OsString>,
    pub access: Access,
    pub accounts: Arc<Accounts>,
    pub registry: Arc<Registry>,
    /// With `--cluster`: the link to the other servers through Redis.
    pub cluster: Option<Arc<Cluster>>,
    pub flushers: Flushers,
    /// The certificate and key, when TLS is on.
    pub tls: Option<TlsSettings>,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        args: Vec<OsString>,
        access: Access,
        accounts: Arc<Accounts>,
        registry: Arc<Registry>,
        cluster: Option<Arc<Cluster>>,
        flushers: Flushers,
        tls: Option<TlsSettings>,
    ) -> Self {
        Self {
            config: RwLock::new(Arc::new(config)),
            args,
            access,
            accounts,
            registry,
            cluster,
            flushers,
            tls,
        }
    }

    /// The settings in force now.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.read())
    }

    /// Puts new settings in force.
    pub fn set_config(&self, config: Config) {
        *self.config.write() = Arc::new(config);
    }
}
