//! Driving a client that has stopped reading past the output bound.

use std::time::{Duration, Instant};

use crate::Client;

/// Sends 4 kB messages from `talker` until the server drops `stuck` (which reads nothing), and
/// checks that `reader` gets every message meanwhile, each within 5 s: not a performance bound
/// (a healthy server takes milliseconds) but what a server that waited for `stuck` would miss.
/// Returns once `talker` too has seen `* STUCK left (too slow)`.
pub fn flood_until_dropped(talker: &mut Client, reader: &mut Client, stuck: &str) {
    let filler = "z".repeat(4000);
    let gone = format!("* {stuck} left (too slow)");
    let mut dropped = false;
    for i in 0..2000 {
        let text = format!("{i:05} {filler}");
        talker.send_line(&text);
        let sent = Instant::now();
        loop {
            let line = reader.next_line();
            if line == gone {
                dropped = true;
                continue;
            }
            assert_eq!(line, format!("[{}] {text}", talker.label()), "message {i}");
            break;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "message {i} was held up behind `{stuck}`, which does not read"
        );
        if dropped {
            break;
        }
    }
    assert!(dropped, "`{stuck}` was never dropped past the output bound");
    talker.expect_next(&gone);
}
