//! `--tls [--ca FILE]`: the rustls client configuration, the handshake, and what a failed
//! handshake means in one line.
//!
//! The roots are the CA certificates in `--ca FILE` (PEM) or else the system's. The name
//! checked is `--host` (or the HOST of an `--also HOST:PORT`, for the clients on that server),
//! as a DNS name or an IP address. Session resumption is off: every
//! simulated client is a user of its own and pays for a full handshake, as a new user would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::login::LoginFail;

/// Everything a client needs to open TLS to the server; cheap to clone.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
    host: String,
    /// The option that named `host` (`--host` or `--also`), for the hints.
    flag: &'static str,
    ca: Option<PathBuf>,
    /// WebSocket over TLS: the port is the web port (only for the hints).
    ws: bool,
}

impl Tls {
    /// Loads the roots (`ca`, or the system's) for a server called `host`.
    pub fn new(host: &str, ca: Option<&Path>, ws: bool) -> Result<Tls> {
        let name = server_name(host, "--host")?;
        let roots = match ca {
            Some(path) => roots_from_file(path)?,
            None => system_roots()?,
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("the TLS provider offers no protocol version")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = Resumption::disabled();
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
            host: host.to_owned(),
            flag: "--host",
            ca: ca.map(Path::to_path_buf),
            ws,
        })
    }

    /// The same roots and settings for the server of an `--also HOST:PORT`: the certificate
    /// is checked for that HOST.
    pub fn for_also(&self, host: &str) -> Result<Tls> {
        Ok(Tls {
            name: server_name(host, "--also")?,
            host: host.to_owned(),
            flag: "--also",
            ..self.clone()
        })
    }

    /// The TLS handshake on a connected socket to `addr`.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        addr: SocketAddr,
    ) -> Result<TlsStream<TcpStream>, LoginFail> {
        self.connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|e| self.failure(&e, addr))
    }

    /// One line for a failed handshake. A certificate that does not verify, or a server that
    /// does not speak TLS, ends the run (every client would fail the same way); anything else
    /// (a reset under load) counts as one failed login.
    fn failure(&self, e: &std::io::Error, addr: SocketAddr) -> LoginFail {
        let host = &self.host;
        let tls_err = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
        match tls_err {
            Some(rustls::Error::InvalidCertificate(c)) => LoginFail::Tls(format!(
                "the TLS certificate of {host} does not verify: {}",
                self.cert_reason(c)
            )),
            Some(rustls::Error::InvalidMessage(_)) => LoginFail::Tls(format!(
                "TLS handshake with {host} ({addr}) failed: the server did not answer in TLS \
                 ({e}); {}",
                self.port_hint()
            )),
            Some(other) => LoginFail::Tls(format!(
                "TLS handshake with {host} ({addr}) failed: {other}"
            )),
            None => LoginFail::Other(format!("TLS handshake with {host} ({addr}): {e}")),
        }
    }

    fn port_hint(&self) -> &'static str {
        if self.ws {
            "with --ws --tls, -p must be the web port of a server started with --tls-cert"
        } else {
            "-p must be the server's TLS port (its `tls on` line), not the plain line port"
        }
    }

    /// Why the certificate was refused, with what to do about it.
    fn cert_reason(&self, c: &CertificateError) -> String {
        let host = &self.host;
        match c {
            CertificateError::UnknownIssuer => match &self.ca {
                Some(ca) => format!(
                    "it is not signed by the CA in --ca {} (unknown issuer)",
                    ca.display()
                ),
                None => "it is not signed by any of the system's root CAs (unknown issuer); \
                         pass the CA that signed it with --ca FILE"
                    .into(),
            },
            CertificateError::NotValidForName => {
                format!(
                    "it is not valid for the name {host:?}; pick the name it has with {}",
                    self.flag
                )
            }
            CertificateError::NotValidForNameContext { .. } => {
                format!("{c}; pick a name it has with {}", self.flag)
            }
            CertificateError::Expired => "it has expired".into(),
            CertificateError::NotValidYet => "it is not valid yet".into(),
            CertificateError::BadSignature => match &self.ca {
                Some(ca) => format!(
                    "it is not signed by the CA in --ca {} (a CA of the same name, but the \
                     signature does not verify)",
                    ca.display()
                ),
                None => "its signature does not verify".into(),
            },
            CertificateError::BadEncoding => "it is not a well-formed certificate".into(),
            other => other.to_string(),
        }
    }
}

/// `host` as the name a certificate must have.
fn server_name(host: &str, flag: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned())
        .with_context(|| format!("{flag} {host:?} is not a name TLS can check"))
}

/// The CA certificates in a PEM file.
pub fn roots_from_file(path: &Path) -> Result<RootCertStore> {
    let shown = path.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        bail!("--ca {shown}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it");
    }
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|e| anyhow::anyhow!("--ca {shown}: certificate {} is unusable: {e}", i + 1))?;
    }
    Ok(roots)
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> anyhow::Error {
    use rustls::pki_types::pem::Error;
    let why = match e {
        Error::Io(io) => format!("cannot read it: {io}"),
        other => format!("not a PEM file: {other:?}"),
    };
    anyhow::anyhow!("--ca {}: {why}", path.display())
}

/// The system's trusted roots (rustls-native-certs).
fn system_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        bail!(
            "--tls: no root certificate found on this system{why}; pass the server's CA with --ca FILE"
        );
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(ca: Option<&Path>) -> Tls {
        Tls {
            connector: TlsConnector::from(Arc::new(
                ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::aws_lc_rs::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth(),
            )),
            name: ServerName::try_from("localhost").unwrap(),
            host: "localhost".into(),
            flag: "--host",
            ca: ca.map(Path::to_path_buf),
            ws: false,
        }
    }

    fn io_err(e: rustls::Error) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }

    const ADDR: &str = "127.0.0.1:9443";

    #[test]
    fn an_unknown_issuer_names_the_host_and_the_ca_file() {
        let t = tls(Some(Path::new("/tmp/other-ca.pem")));
        let e = io_err(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let f = t.failure(&e, ADDR.parse().unwrap());
        assert!(f.is_fatal());
        let s = f.to_string();
        assert!(!s.contains('\n'), "{s}");
        assert!(
            s.starts_with("the TLS certificate of localhost does not verify"),
            "{s}"
        );
        assert!(s.contains("--ca /tmp/other-ca.pem"), "{s}");
        let s = tls(None).failure(&e, ADDR.parse().unwrap()).to_string();
        assert!(
            s.contains("system's root CAs") && s.contains("--ca FILE"),
            "{s}"
        );
    }

    #[test]
    fn a_plain_port_is_named() {
        let e = io_err(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        let f = tls(None).failure(&e, ADDR.parse().unwrap());
        assert!(f.is_fatal());
        assert!(f.to_string().contains("`tls on` line"), "{f}");
    }

    #[test]
    fn a_reset_is_one_failed_login_not_the_end_of_the_run() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let f = tls(None).failure(&e, ADDR.parse().unwrap());
        assert!(!f.is_fatal(), "{f}");
        assert!(
            f.to_string().contains("TLS handshake with localhost"),
            "{f}"
        );
    }

    #[test]
    fn ca_files_that_hold_no_certificate() {
        let dir = std::env::temp_dir().join(format!("chat-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "just text\n").unwrap();
        let e = roots_from_file(&empty).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let missing = dir.join("missing.pem");
        let e = roots_from_file(&missing).unwrap_err().to_string();
        assert!(
            e.contains("cannot read it") && e.contains("missing.pem"),
            "{e}"
        );
        let garbage = dir.join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = roots_from_file(&garbage).unwrap_err().to_string();
        assert!(e.contains("--ca") && e.contains("garbage.pem"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn host_names_and_addresses() {
        assert!(Tls::new("not a name", None, false).is_err());
        let t = tls(None);
        let e = t.for_also("not a name").err().unwrap().to_string();
        assert!(e.starts_with("--also \"not a name\""), "{e}");
        let also = t.for_also("::1").unwrap();
        assert_eq!((also.host.as_str(), also.flag), ("::1", "--also"));
        let e = io_err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        ));
        let s = also.failure(&e, ADDR.parse().unwrap()).to_string();
        assert!(
            s.starts_with("the TLS certificate of ::1 does not verify") && s.ends_with("--also"),
            "{s}"
        );
    }
}
