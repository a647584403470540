//! The TLS transport against an in-process rustls server with certificates made here (rcgen).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::*;

type ServerStream = StreamOwned<ServerConnection, TcpStream>;

/// A CA (its PEM in a temp file) and a server configuration with a certificate it signed for
/// localhost and 127.0.0.1.
struct Pki {
    ca_file: PathBuf,
    server: Arc<ServerConfig>,
}

impl Pki {
    fn new() -> Pki {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: a CA that shares another's name is its impostor (BadSignature).
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("chat-client unit CA {n}"));
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let cert = params.signed_by(&key, &issuer).unwrap();
        let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let server = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        let ca_file = std::env::temp_dir().join(format!(
            "chat-client-unit-{}-{n}-ca.pem",
            std::process::id()
        ));
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        Pki {
            ca_file,
            server: Arc::new(server),
        }
    }

    /// Accepts one connection on a thread and runs `script` on it.
    fn serve(
        &self,
        script: impl FnOnce(ServerStream) + Send + 'static,
    ) -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Arc::clone(&self.server);
        let handle = thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let conn = ServerConnection::new(config).unwrap();
            script(StreamOwned::new(conn, tcp));
        });
        (addr, handle)
    }

    /// Connects to `addr` trusting this CA and checking the certificate for `host`.
    fn connect(&self, addr: SocketAddr, host: &str) -> anyhow::Result<Transport> {
        let config = config(Some(&self.ca_file))?;
        handshake(TcpStream::connect(addr)?, config, host)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

/// Reads until `want` bytes have come or the stream ends.
fn read_n(transport: &Transport, want: usize) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.len() < want {
        match transport.read(&mut buf, Some(Duration::from_secs(10))) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed: {e}; got {:?}", String::from_utf8_lossy(&got)),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn a_missing_ca_file_is_named() {
    let err = config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "cannot read the CA file /nonexistent/ca.pem: no such file or directory"
    );
}

#[test]
fn a_ca_file_without_certificates_is_refused() {
    let path =
        std::env::temp_dir().join(format!("chat-client-unit-{}-empty.pem", std::process::id()));
    std::fs::write(&path, "not a certificate\n").unwrap();
    let err = config(Some(&path)).unwrap_err();
    let _ = std::fs::remove_file(&path);
    assert!(
        format!("{err:#}").contains("holds no PEM certificate"),
        "{err:#}"
    );
}

#[test]
fn reader_and_writer_share_one_session() {
    let pki = Pki::new();
    const LINES: usize = 200;
    // The server greets, then echoes every line it gets.
    let (addr, server) = pki.serve(|mut tls| {
        tls.write_all(b"Username: ").unwrap();
        tls.flush().unwrap();
        let mut lines = BufReader::new(tls);
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            let echo = format!("echo {line}");
            lines.get_mut().write_all(echo.as_bytes()).unwrap();
            line.clear();
        }
    });
    let transport = pki.connect(addr, "localhost").unwrap();
    let expected: String = (0..LINES).map(|i| format!("echo line {i}\n")).collect();
    let want = "Username: ".len() + expected.len();
    let reader = {
        let transport = transport.clone();
        thread::spawn(move || read_n(&transport, want))
    };
    for i in 0..LINES {
        transport
            .write_all(format!("line {i}\n").as_bytes())
            .unwrap();
    }
    let got = reader.join().unwrap();
    assert_eq!(got, format!("Username: {expected}"));
    transport.shutdown();
    server.join().unwrap();
}

#[test]
fn a_read_waits_no_longer_than_asked() {
    let pki = Pki::new();
    let (go, wait_go) = mpsc::channel::<()>();
    let (addr, server) = pki.serve(move |mut tls| {
        // Complete the handshake, then stay silent until told.
        tls.conn.complete_io(&mut tls.sock).unwrap();
        wait_go.recv().unwrap();
        tls.write_all(b"late\n").unwrap();
        tls.flush().unwrap();
    });
    let transport = pki.connect(addr, "127.0.0.1").unwrap();
    let mut buf = [0u8; 64];
    let started = Instant::now();
    let err = transport
        .read(&mut buf, Some(Duration::from_millis(200)))
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    go.send(()).unwrap();
    assert_eq!(read_n(&transport, 5), "late\n");
    server.join().unwrap();
}

#[test]
fn the_end_comes_with_or_without_close_notify() {
    for polite in [true, false] {
        let pki = Pki::new();
        let (addr, server) = pki.serve(move |mut tls| {
            tls.write_all(b"bye\n").unwrap();
            tls.flush().unwrap();
            if polite {
                tls.conn.send_close_notify();
                let _ = tls.conn.complete_io(&mut tls.sock);
            }
            let _ = tls.sock.shutdown(std::net::Shutdown::Both);
        });
        let transport = pki.connect(addr, "localhost").unwrap();
        assert_eq!(read_n(&transport, 1000), "bye\n", "close_notify: {polite}");
        let mut buf = [0u8; 16];
        assert_eq!(transport.read(&mut buf, None).unwrap(), 0);
        server.join().unwrap();
    }
}

#[test]
fn shutdown_ends_a_blocked_read() {
    let pki = Pki::new();
    let (addr, server) = pki.serve(|mut tls| {
        let mut buf = [0u8; 64];
        // Handshake, then wait for the client's close.
        while matches!(tls.read(&mut buf), Ok(n) if n > 0) {}
    });
    let transport = pki.connect(addr, "localhost").unwrap();
    let reader = {
        let transport = transport.clone();
        thread::spawn(move || transport.read(&mut [0u8; 64], None))
    };
    thread::sleep(Duration::from_millis(100));
    transport.shutdown();
    assert!(matches!(reader.join().unwrap(), Ok(0) | Err(_)));
    server.join().unwrap();
}

#[test]
fn a_certificate_from_another_ca_gives_one_line_naming_the_host() {
    let pki = Pki::new();
    let other = Pki::new();
    let (addr, server) = pki.serve(|mut tls| {
        let _ = tls.conn.complete_io(&mut tls.sock);
    });
    let err = other.connect(addr, "localhost").err().expect("refused");
    assert_eq!(
        format!("{err:#}"),
        "the TLS certificate of localhost does not verify: \
         invalid peer certificate: UnknownIssuer"
    );
    server.join().unwrap();
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let pki = Pki::new();
    let (addr, server) = pki.serve(|mut tls| {
        let _ = tls.conn.complete_io(&mut tls.sock);
    });
    let err = pki.connect(addr, "chat.example").err().expect("refused");
    let text = format!("{err:#}");
    assert!(
        text.starts_with("the TLS certificate of chat.example does not verify: ")
            && text.contains("not valid for name \"chat.example\""),
        "{text}"
    );
    server.join().unwrap();
}

#[test]
fn a_plain_server_fails_the_handshake_with_one_line() {
    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let _ = tcp.write_all(b"Username: ");
        let _ = tcp.read(&mut [0u8; 1024]);
    });
    let err = pki.connect(addr, "localhost").err().expect("refused");
    let text = format!("{err:#}");
    assert!(
        text.starts_with("TLS handshake with localhost failed: "),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    server.join().unwrap();
}

#[test]
fn host_names_that_cannot_be_checked_are_refused() {
    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let config = config(Some(&pki.ca_file)).unwrap();
    let err = handshake(tcp, config, "bad name!").err().expect("refused");
    assert!(format!("{err:#}").contains("bad name!"), "{err:#}");
}
