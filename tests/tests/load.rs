//! PROTOCOL.md section 3 under load: 200 concurrent clients, several senders at once, no loss,
//! each sender's order kept, and one total order of a room's messages for every recipient.

use std::sync::{Arc, Barrier};
use std::thread;

use chat_tests::{Client, Server};

const CLIENTS: usize = 200;
const SENDERS: usize = 4;
const PER_SENDER: usize = 50;

fn name(i: usize) -> String {
    format!("u{i:03}")
}

/// Reads until `expected` messages have arrived; returns them as (sender index, sequence).
/// `* ` notices (joins) are skipped; anything else fails the test.
fn collect(c: &mut Client, expected: usize) -> Vec<(usize, usize)> {
    let mut got = Vec::with_capacity(expected);
    while got.len() < expected {
        let line = c.next_line();
        if line.starts_with("* ") {
            continue;
        }
        let parsed = line.strip_prefix("[u").and_then(|rest| {
            let (from, text) = rest.split_once("] ")?;
            let (k, seq) = text.strip_prefix("msg ")?.split_once('-')?;
            let from: usize = from.parse().ok()?;
            let k: usize = k.parse().ok()?;
            (from == k).then_some((k, seq.parse().ok()?))
        });
        match parsed {
            Some(m) => got.push(m),
            None => panic!(
                "{}: unexpected line {line:?} after {} messages\n{}",
                c.label(),
                got.len(),
                c.context()
            ),
        }
    }
    got
}

#[test]
fn two_hundred_clients_get_every_message_in_one_order() {
    let s = Server::start(&["--flood-rate", "0"]);
    let clients: Vec<Client> = (0..CLIENTS).map(|i| s.login(&name(i))).collect();

    let start = Arc::new(Barrier::new(SENDERS));
    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let start = Arc::clone(&start);
            thread::Builder::new()
                .name(name(i))
                .spawn(move || {
                    let expected = if i < SENDERS {
                        start.wait();
                        for seq in 0..PER_SENDER {
                            c.send_line(&format!("msg {i}-{seq}"));
                        }
                        (SENDERS - 1) * PER_SENDER
                    } else {
                        SENDERS * PER_SENDER
                    };
                    collect(&mut c, expected)
                })
                .expect("spawning a client thread")
        })
        .collect();
    let received: Vec<Vec<(usize, usize)>> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
        .collect();

    // Each sender's messages arrive complete and in order, at everyone but the sender.
    for (i, got) in received.iter().enumerate() {
        for k in 0..SENDERS {
            let seqs: Vec<usize> = got.iter().filter(|m| m.0 == k).map(|m| m.1).collect();
            let want: Vec<usize> = if k == i {
                vec![]
            } else {
                (0..PER_SENDER).collect()
            };
            assert_eq!(seqs, want, "{} got these messages of {}", name(i), name(k));
        }
    }
    // One total order: every recipient sees the same sequence (senders without their own).
    let reference = &received[SENDERS];
    for (i, got) in received.iter().enumerate() {
        let want: Vec<(usize, usize)> = reference.iter().copied().filter(|m| m.0 != i).collect();
        if *got != want {
            let at = got.iter().zip(&want).position(|(a, b)| a != b);
            panic!(
                "{} saw another order than {} (first difference at {at:?}: got {:?}, {} \
                 saw {:?})",
                name(i),
                name(SENDERS),
                at.map(|p| got[p]),
                name(SENDERS),
                at.map(|p| want[p])
            );
        }
    }
}
