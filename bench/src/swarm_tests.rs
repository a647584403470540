//! Spreading over several servers (`--also`), against tiny in-process line servers: each
//! logs its clients in as PROTOCOL.md section 2 says and relays every line to its own other
//! clients only, as separate chat-servers would.

use std::sync::Mutex;

use clap::Parser;
use indicatif::ProgressBar;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpListener;

use super::*;
use crate::args::{Cli, Cmd, Common};

type Room = Arc<tokio::sync::Mutex<Vec<(String, OwnedWriteHalf)>>>;

/// A server that logs anyone in and relays `[NAME] line` to its other clients; returns its
/// address and the names that logged in there.
async fn tiny_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let names = Arc::new(Mutex::new(Vec::new()));
    let room: Room = Default::default();
    let seen = names.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let (room, seen) = (room.clone(), seen.clone());
            tokio::spawn(async move {
                let (rd, mut wr) = tcp.into_split();
                let mut rd = BufReader::new(rd).lines();
                wr.write_all(b"* welcome to chat-server\r\nUsername: ")
                    .await
                    .unwrap();
                let Ok(Some(name)) = rd.next_line().await else {
                    return;
                };
                let hello = format!("* welcome, {name}! you are in lobby\r\n");
                wr.write_all(hello.as_bytes()).await.unwrap();
                seen.lock().unwrap().push(name.clone());
                room.lock().await.push((name.clone(), wr));
                while let Ok(Some(line)) = rd.next_line().await {
                    let out = format!("[{name}] {line}\r\n");
                    for (who, w) in room.lock().await.iter_mut() {
                        if *who != name {
                            let _ = w.write_all(out.as_bytes()).await;
                        }
                    }
                }
            });
        }
    });
    (addr, names)
}

fn common(args: &[&str]) -> Common {
    let argv = [&["chat-bench", "idle"], args].concat();
    match Cli::try_parse_from(argv).unwrap().cmd {
        Cmd::Idle(a) => a.common,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn clients_are_spread_round_robin_and_each_server_has_its_barrier() {
    let (a, on_a) = tiny_server().await;
    let (b, on_b) = tiny_server().await;
    let c = common(&["-p", &a.port().to_string(), "--also", &format!("{b}")]);
    let addrs = c.addrs().unwrap();
    assert_eq!(addrs, [a, b]);
    let sh = Arc::new(Shared::new("b", 0, 1).with_servers(2));
    let mut swarm = Swarm::new(sh.clone(), &addrs, &c).unwrap();
    swarm.grow(5, 2, &ProgressBar::hidden()).await.unwrap();
    let sorted = |n: &Mutex<Vec<String>>| {
        let mut v = n.lock().unwrap().clone();
        v.sort();
        v
    };
    assert_eq!(sorted(&on_a), ["b0", "b2", "b4"]);
    assert_eq!(sorted(&on_b), ["b1", "b3"]);
    // The servers do not relay to each other, yet the barrier holds: b0 and b1 probe their own.
    swarm.barrier().await.unwrap();
    assert_eq!(sh.probe_seen.load(Acquire), 3);
    // More clients go on where the spreading left off.
    swarm.grow(2, 2, &ProgressBar::hidden()).await.unwrap();
    assert_eq!(sorted(&on_b), ["b1", "b3", "b5"]);
    assert_eq!(sorted(&on_a).len(), 4);
    swarm.barrier().await.unwrap();
    assert_eq!(sh.probe_seen.load(Acquire), 5);
    swarm.stop().await;
}

#[tokio::test]
async fn the_same_server_twice_is_one_chat() {
    let (a, on_a) = tiny_server().await;
    let c = common(&["-p", &a.port().to_string(), "--also", &format!("{a}")]);
    let addrs = c.addrs().unwrap();
    let sh = Arc::new(Shared::new("b", 0, 1).with_servers(2));
    let mut swarm = Swarm::new(sh.clone(), &addrs, &c).unwrap();
    swarm.grow(4, 4, &ProgressBar::hidden()).await.unwrap();
    assert_eq!(on_a.lock().unwrap().len(), 4);
    swarm.barrier().await.unwrap();
    // b2 and b3 count; b0 and b1 (the heads) see each other's probe, which is not their own.
    assert_eq!(sh.probe_seen.load(Acquire), 2);
    swarm.stop().await;
}
