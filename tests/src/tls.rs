//! Certificates made at test time (rcgen): a private CA and a server certificate it signed for
//! `localhost` and 127.0.0.1, written as PEM files; and a raw TLS client over rustls.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A CA and a server certificate signed by it, as files in a directory of their own.
pub struct TestCerts {
    dir: PathBuf,
    ca_der: CertificateDer<'static>,
}

impl TestCerts {
    /// A new CA (named `name`) and a server certificate for localhost and 127.0.0.1.
    pub fn new(name: &str) -> TestCerts {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("chat-tls-{}-{n}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the certificate directory");

        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("chat-tests CA {name}"));
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let certs = TestCerts {
            dir,
            ca_der: ca_cert.der().clone(),
        };
        std::fs::write(certs.ca(), ca_cert.pem()).expect("writing ca.pem");
        certs.issue("server", &issuer);
        certs
    }

    fn issue(&self, stem: &str, issuer: &Issuer<'_, KeyPair>) {
        let key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().expect("an address")));
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, issuer).expect("server certificate");
        std::fs::write(self.dir.join(format!("{stem}.pem")), cert.pem()).expect("writing cert");
        std::fs::write(self.dir.join(format!("{stem}.key")), key.serialize_pem())
            .expect("writing key");
    }

    /// The CA certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The server certificate (PEM).
    pub fn cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server's private key (PEM).
    pub fn key(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// `--tls-cert CERT --tls-key KEY`, for `Server::start`.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".to_owned(),
            path_str(&self.cert()),
            "--tls-key".to_owned(),
            path_str(&self.key()),
        ]
    }

    /// A rustls client configuration that trusts this CA only.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("adding the CA");
        Arc::new(
            ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    /// Connects and completes a TLS handshake to 127.0.0.1 at `addr`, as `localhost`.
    pub fn connect(&self, addr: SocketAddr) -> StreamOwned<ClientConnection, TcpStream> {
        self.try_connect(addr)
            .unwrap_or_else(|e| panic!("TLS handshake with chat-server at {addr}: {e}"))
    }

    /// [`TestCerts::connect`], with a failed handshake as an error.
    pub fn try_connect(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<StreamOwned<ClientConnection, TcpStream>> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(crate::T))?;
        let name = ServerName::try_from("localhost").expect("a server name");
        let conn = ClientConnection::new(self.client_config(), name).expect("a TLS client");
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(stream)
    }

    /// The server certificate a TLS handshake with `addr` presents (DER), if this CA accepts it.
    pub fn presented_certificate(&self, addr: SocketAddr) -> std::io::Result<Vec<u8>> {
        let stream = self.try_connect(addr)?;
        let certs = stream
            .conn
            .peer_certificates()
            .expect("the server presented certificates");
        Ok(certs[0].to_vec())
    }

    /// The server certificate file as DER, to compare with what a server presents.
    pub fn cert_der(&self) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_file(self.cert())
            .expect("reading server.pem")
            .to_vec()
    }

    /// Replaces the server certificate and key with a new pair from another CA, in place.
    pub fn rotate_from(&self, other: &TestCerts) {
        std::fs::copy(other.cert(), self.cert()).expect("copying the new certificate");
        std::fs::copy(other.key(), self.key()).expect("copying the new key");
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temp path").to_owned()
}

/// Reads from a TLS stream until `needle` has arrived; returns everything read.
pub fn read_until<S: Read>(stream: &mut S, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        match stream.read(&mut buf) {
            Ok(0) => panic!(
                "closed before {needle:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "reading before {needle:?}: {e}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Writes a line (with LF) to a TLS stream.
pub fn write_line<S: Write>(stream: &mut S, line: &str) {
    stream
        .write_all(format!("{line}\n").as_bytes())
        .and_then(|()| stream.flush())
        .expect("writing to the TLS stream");
}
