//! TLS (PROTOCOL.md section 10): the certificate and key, reloaded on SIGHUP, and the TLS
//! session of one connection as one more layer on the shared paths. A connection's session
//! sits in its [`Peer`](crate::peer::Peer): the reader thread feeds it what arrives and takes
//! out plaintext ([`super::input`]); the flusher encrypts the output queue through it. rustls'
//! own buffers are unbounded here because `--outbuf-limit` already bounds what is queued.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use parking_lot::Mutex;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

/// The certificate and key in force.
pub struct TlsSettings {
    line: Mutex<Arc<ServerConfig>>,
    web: Mutex<Arc<ServerConfig>>,
}

/// A certificate and key read and checked, not yet in force.
pub struct TlsPair((Arc<ServerConfig>, Arc<ServerConfig>));

/// Which listener a session is for: the web port also offers `http/1.1` by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPort {
    Line,
    Web,
}

impl TlsSettings {
    /// Loads the pair; an error names the file and what is wrong with it.
    pub fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<Self> {
        let (line, web) = configs(cert_path, key_path)?;
        Ok(Self {
            line: Mutex::new(line),
            web: Mutex::new(web),
        })
    }

    /// Reads and checks a pair without putting it in force (SIGHUP reads the files the
    /// settings now name). New connections get the new pair; open ones keep theirs.
    pub fn read_pair(cert_path: &Path, key_path: &Path) -> anyhow::Result<TlsPair> {
        configs(cert_path, key_path).map(TlsPair)
    }

    /// New connections from now on use `pair`.
    pub fn put_in_force(&self, TlsPair((line, web)): TlsPair) {
        *self.line.lock() = line;
        *self.web.lock() = web;
    }

    /// A server session for a new connection.
    pub fn session(&self, port: TlsPort) -> Result<ServerConnection, rustls::Error> {
        let config = match port {
            TlsPort::Line => Arc::clone(&self.line.lock()),
            TlsPort::Web => Arc::clone(&self.web.lock()),
        };
        let mut session = ServerConnection::new(config)?;
        session.set_buffer_limit(None);
        Ok(session)
    }
}

fn configs(
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<(Arc<ServerConfig>, Arc<ServerConfig>)> {
    let certs = read_certs(cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
        anyhow!(
            "--tls-key {}: no private key in it ({e})",
            key_path.display()
        )
    })?;
    let build = |alpn: &[&[u8]]| -> anyhow::Result<Arc<ServerConfig>> {
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs.clone(), key.clone_key())
            .with_context(|| {
                format!(
                    "--tls-cert {} and --tls-key {} do not make a pair",
                    cert_path.display(),
                    key_path.display()
                )
            })?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    };
    Ok((build(&[])?, build(&[b"http/1.1"])?))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow!("--tls-cert {}: cannot read it ({e})", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("--tls-cert {}: not PEM certificates ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(anyhow!(
            "--tls-cert {}: no certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}
