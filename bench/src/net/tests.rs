//! Transports, and a real TLS handshake and read path against an in-process rustls server
//! with certificates made here (rcgen).

use std::path::PathBuf;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;

use clap::Parser;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::args::{Cli, Common};
use crate::marker::{self, Kind, Marker};
use crate::shared::Shared;

#[test]
fn four_transports() {
    let all = [
        (false, false, Transport::Tcp, "\"tcp\""),
        (true, false, Transport::Ws, "\"ws\""),
        (false, true, Transport::Tls, "\"tls\""),
        (true, true, Transport::Wss, "\"wss\""),
    ];
    for (ws, tls, t, json) in all {
        assert_eq!(Transport::new(ws, tls), t);
        assert_eq!((t.is_ws(), t.is_tls()), (ws, tls));
        assert_eq!(serde_json::to_string(&t).unwrap(), json);
        let mut out = Vec::new();
        t.push_line(&mut out, b"hi");
        // A masked frame: FIN + text, mask bit and length 2, four key bytes, two bytes.
        assert_eq!(out.len(), if ws { 8 } else { 4 }, "{t:?}");
        assert_eq!(&out[..2], if ws { &[0x81, 0x82][..] } else { b"hi" });
    }
    assert_eq!(
        Transport::Wss.describe("127.0.0.1:9010"),
        "wss (WebSocket over TLS, wss://127.0.0.1:9010/ws)"
    );
    assert_eq!(
        Transport::Tls.describe("127.0.0.1:9443"),
        "tls (lines over TLS on 127.0.0.1:9443)"
    );
}

#[test]
fn ca_needs_tls() {
    let r = Cli::try_parse_from(["chat-bench", "idle", "--ca", "x.pem"]);
    assert!(r.is_err(), "--ca without --tls is refused");
}

/// A CA (its PEM in a file) and a server configuration with a certificate it signed for
/// localhost and 127.0.0.1.
struct Pki {
    dir: PathBuf,
    server: Arc<ServerConfig>,
}

impl Pki {
    /// `ca_name`: the CA's common name (two CAs of one name differ only in their keys).
    fn new(tag: &str, ca_name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("chat-bench-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        p.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let cert = p.signed_by(&key, &issuer).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
            )
            .unwrap();
        Pki {
            dir,
            server: Arc::new(server),
        }
    }

    fn ca(&self) -> String {
        self.dir.join("ca.pem").to_str().unwrap().to_owned()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn common(args: &[&str]) -> Common {
    let argv = [&["chat-bench", "idle"], args].concat();
    match Cli::try_parse_from(argv).unwrap().cmd {
        crate::args::Cmd::Idle(a) => a.common,
        _ => unreachable!(),
    }
}

fn msg_line(seq: u64) -> Vec<u8> {
    let mut l = b"[b0] ".to_vec();
    let m = Marker {
        kind: Kind::Msg,
        sender: 0,
        seq,
        sent_ns: 0,
    };
    marker::encode(&mut l, &m, 64);
    l.extend_from_slice(b"\r\n");
    l
}

/// A TLS server that reads one line, then sends `lines` marker lines from b0 in writes of
/// various sizes (so records end inside lines), then closes.
async fn serve_lines(pki: &Pki, lines: u64) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(pki.server.clone());
    tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let mut s = acceptor.accept(tcp).await.unwrap();
        let mut got = [0u8; 64];
        let n = s.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], b"hello\r\n");
        let all: Vec<u8> = (1..=lines).flat_map(msg_line).collect();
        for (i, chunk) in all.chunks(7_777).enumerate() {
            s.write_all(chunk).await.unwrap();
            if i % 3 == 0 {
                s.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
        }
        s.shutdown().await.unwrap();
    });
    addr
}

#[tokio::test]
async fn tls_lines_reach_the_checker_whole_and_in_order() {
    let pki = Pki::new("read", "test CA");
    let n = 5_000;
    let addr = serve_lines(&pki, n).await;
    let c = common(&["--tls", "--ca", &pki.ca(), "--host", "localhost"]);
    let to = Connector::new(&c, addr).unwrap();
    assert_eq!(to.transport, Transport::Tls);
    let s = to.connect().await.unwrap_or_else(|e| panic!("{e}"));
    let (rd, mut wr) = s.split();
    assert!(matches!(rd, Reader::Tls(_)));
    let mut line = Vec::new();
    Transport::Tls.push_line(&mut line, b"hello");
    wr.send(&line).await.unwrap();
    let sh = Arc::new(Shared::new("b", 1, 1));
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let st = crate::client::read_loop(sh.clone(), 1, rd, Vec::new(), None, stop).await;
    assert_eq!((st.count[0], st.last_seq[0], st.out_of_order), (n, n, 0));
    assert_eq!(sh.delivered.load(Acquire), n);
    assert_eq!(sh.garbled.load(Acquire), 0);
    // The server's close is a disconnect, reported as such.
    assert_eq!(sh.disconnects.load(Acquire), 1);
    assert!(
        sh.notes()[0].contains("closed the connection"),
        "{:?}",
        sh.notes()
    );
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_one_clear_fatal_line() {
    let pki = Pki::new("served", "test CA");
    // Another CA, and another with the same name (a CA made anew): both named in one line.
    for (other, why) in [
        (Pki::new("other", "another CA"), "unknown issuer"),
        (Pki::new("same", "test CA"), "signature does not verify"),
    ] {
        let addr = serve_lines(&pki, 1).await;
        let c = common(&["--tls", "--ca", &other.ca(), "--host", "127.0.0.1"]);
        let to = Connector::new(&c, addr).unwrap();
        let e = to.connect().await.err().expect("the handshake must fail");
        assert!(e.is_fatal(), "{e}");
        let s = e.to_string();
        assert!(
            s.starts_with("the TLS certificate of 127.0.0.1 does not verify")
                && s.contains(&format!("not signed by the CA in --ca {}", other.ca()))
                && s.contains(why)
                && !s.contains('\n'),
            "{s}"
        );
    }
}

#[tokio::test]
async fn a_name_the_certificate_lacks_is_named() {
    let pki = Pki::new("name", "test CA");
    let addr = serve_lines(&pki, 1).await;
    // ::1 is not in the certificate; the connection still goes to 127.0.0.1.
    let c = common(&["--tls", "--ca", &pki.ca(), "--host", "::1"]);
    let to = Connector::new(&c, addr).unwrap();
    let s = to.connect().await.err().expect("wrong name").to_string();
    assert!(
        s.starts_with("the TLS certificate of ::1 does not verify"),
        "{s}"
    );
    assert!(s.contains("--host"), "{s}");
}

#[tokio::test]
async fn tls_to_a_plain_line_port_says_which_port_to_use() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = l.accept().await.unwrap();
        let _ = tcp
            .write_all(b"* welcome to chat-server\r\nUsername: ")
            .await;
        let mut sink = [0u8; 1024];
        let _ = tcp.read(&mut sink).await;
    });
    let pki = Pki::new("plain", "test CA");
    let c = common(&["--tls", "--ca", &pki.ca()]);
    let e = Connector::new(&c, addr)
        .unwrap()
        .connect()
        .await
        .err()
        .expect("not TLS");
    assert!(e.is_fatal());
    assert!(e.to_string().contains("`tls on` line"), "{e}");
}

#[tokio::test]
async fn each_also_server_is_checked_for_its_own_host() {
    let pki = Pki::new("also", "test CA");
    // The certificate holds localhost and 127.0.0.1, not ::1.
    let c = common(&["--tls", "--ca", &pki.ca(), "--host", "localhost"]);
    let main = Connector::new(&c, serve_lines(&pki, 1).await).unwrap();
    let good = main.also("127.0.0.1", serve_lines(&pki, 1).await).unwrap();
    assert_eq!(good.transport, Transport::Tls);
    good.connect().await.unwrap_or_else(|e| panic!("{e}"));
    let bad = main.also("::1", serve_lines(&pki, 1).await).unwrap();
    let s = bad.connect().await.err().expect("wrong name").to_string();
    assert!(
        s.starts_with("the TLS certificate of ::1 does not verify") && s.contains("--also"),
        "{s}"
    );
    // The main server's connector is unchanged.
    main.connect().await.unwrap_or_else(|e| panic!("{e}"));
}
