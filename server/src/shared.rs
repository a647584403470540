//! What every connection thread shares: the settings, the registry, and the output threads.

use crate::access::Access;
use crate::config::Config;
use crate::flusher::Flushers;
use crate::registry::Registry;

pub struct Shared {
    pub config: Config,
    pub access: Access,
    pub registry: Registry,
    pub flushers: Flushers,
}
