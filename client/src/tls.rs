//! `--tls`: which certificates to trust, the handshake, and what to say when it fails.
//!
//! The server's certificate is checked against the system's trusted roots (the OS store, via
//! `rustls-native-certs`, which also honours `SSL_CERT_FILE` and `SSL_CERT_DIR`), or against
//! only the CA certificates in `--ca FILE`. The name checked is the HOST as given: a DNS name
//! or an IP address.

use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::session::describe;
use crate::transport::Transport;

/// The longest a handshake may take, as a connect may.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The client configuration: trust `ca`'s certificates only, or else the system's roots.
pub fn config(ca: Option<&Path>) -> anyhow::Result<Arc<ClientConfig>> {
    let roots = match ca {
        Some(path) => roots_from_file(path)?,
        None => system_roots()?,
    };
    Ok(Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// Every certificate in a PEM file, as trust anchors.
fn roots_from_file(path: &Path) -> anyhow::Result<RootCertStore> {
    let shown = path.display();
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("cannot read the CA file {shown}: {}", pem_error(&e)))?;
    for cert in certs {
        roots
            .add(cert)
            .with_context(|| format!("the CA file {shown} holds an unusable certificate"))?;
    }
    if roots.is_empty() {
        anyhow::bail!("the CA file {shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
    }
    Ok(roots)
}

fn pem_error(err: &rustls::pki_types::pem::Error) -> String {
    match err {
        rustls::pki_types::pem::Error::Io(e) => describe(e),
        other => other.to_string(),
    }
}

/// The roots the operating system trusts.
fn system_roots() -> anyhow::Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        anyhow::bail!(
            "no trusted root certificates found on this system{why}; \
             give the server's CA with --ca FILE"
        );
    }
    Ok(roots)
}

/// Runs the TLS handshake on a connected socket, checking the certificate for `host`.
pub fn handshake(
    mut tcp: TcpStream,
    config: Arc<ClientConfig>,
    host: &str,
) -> anyhow::Result<Transport> {
    let name = ServerName::try_from(host.to_owned()).map_err(|_| {
        anyhow!("cannot check a TLS certificate for {host}: not a host name or an IP address")
    })?;
    let mut conn = ClientConnection::new(config, name)
        .with_context(|| format!("cannot start TLS with {host}"))?;
    tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    tcp.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| handshake_error(host, &e))?;
    }
    tcp.set_write_timeout(None)?;
    Ok(Transport::tls(tcp, conn))
}

/// One line for a failed handshake, naming the host.
fn handshake_error(host: &str, err: &io::Error) -> anyhow::Error {
    let tls_error = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls_error {
        Some(e @ rustls::Error::InvalidCertificate(_)) => {
            anyhow!("the TLS certificate of {host} does not verify: {e}")
        }
        // What a plain port answers a ClientHello with.
        Some(e @ rustls::Error::InvalidMessage(_)) => {
            anyhow!("TLS handshake with {host} failed: {e} (is that port the server's TLS port?)")
        }
        Some(e) => anyhow!("TLS handshake with {host} failed: {e}"),
        None => match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                anyhow!("TLS handshake with {host} timed out")
            }
            io::ErrorKind::UnexpectedEof => anyhow!(
                "TLS handshake with {host} failed: the server closed the connection \
                 (is that port the server's TLS port?)"
            ),
            _ => anyhow!("TLS handshake with {host} failed: {}", describe(err)),
        },
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
