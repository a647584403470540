//! PROTOCOL.md section 6: a client that stops reading has bounded unsent output, is dropped
//! past it (`* NAME left (too slow)`), and delays no other client meanwhile.

use std::time::{Duration, Instant};

use chat_tests::{tcp_row, Client, Server, T};

/// The longest a message may take to reach a reading client while another one is stuck. This is
/// not a performance bound: a healthy server takes milliseconds; a server that waits for the
/// stuck client before serving others takes until it gives up on it.
const STALL: Duration = Duration::from_secs(5);

/// Bytes waiting unread in `client`'s own receive buffer.
fn unread_in_kernel(s: &Server, client: &Client) -> Option<u64> {
    let port = client.stream().local_addr().expect("local addr").port();
    tcp_row(port, s.addr().port()).map(|r| r.rx_queue)
}

#[test]
fn client_that_stops_reading_is_dropped_and_delays_no_one() {
    let s = Server::start(&["--outbuf-limit", "65536", "--flood-rate", "0"]);
    let mut fast = s.login("fast");
    let mut slow = Client::connect_with_rcvbuf(s.addr(), 4096);
    slow.login("slow");
    fast.expect_next("* slow joined");
    let mut talker = s.login("talker");
    fast.expect_next("* talker joined");
    // From here on `slow` reads nothing.

    let filler = "x".repeat(4000);
    const MAX_MESSAGES: usize = 4000; // 16 MB in all at most
    let mut dropped_at: Option<usize> = None;
    // The first message after which slow's receive buffer stopped filling (full, window
    // closed): slow is stuck from there on, and whatever fast gets is got while slow is stuck.
    let mut stuck_at: Option<usize> = None;
    let mut received_while_stuck = 0;
    let mut last_unread = 0;
    for i in 0..MAX_MESSAGES {
        let text = format!("{i:06} {filler}");
        talker.send_line(&text);
        let sent = Instant::now();
        let expected = format!("[talker] {text}");
        loop {
            let line = fast.next_line_within(T);
            if line == "* slow left (too slow)" && dropped_at.is_none() {
                dropped_at = Some(i);
                continue;
            }
            assert!(
                line == expected,
                "fast: expected message {i} from talker, got {:?}",
                &line[..line.len().min(80)]
            );
            break;
        }
        let waited = sent.elapsed();
        if dropped_at.is_none() {
            assert!(
                waited < STALL,
                "message {i} took {waited:?} to reach `fast` while `slow` was stuck: the server \
                 delays other clients behind one that does not read"
            );
            if stuck_at.is_some() {
                received_while_stuck += 1;
            } else if let Some(unread) = unread_in_kernel(&s, &slow) {
                if unread > 0 && unread == last_unread {
                    stuck_at = Some(i);
                }
                last_unread = unread;
            }
        }
        if dropped_at.is_some_and(|d| i >= d + 20) {
            break;
        }
    }
    let Some(dropped_at) = dropped_at else {
        panic!(
            "`slow` was never dropped after {MAX_MESSAGES} messages of 4 kB with \
             --outbuf-limit 65536 ({last_unread} bytes unread in its receive buffer)"
        );
    };
    assert!(
        received_while_stuck >= 2,
        "`fast` should have received messages while `slow` was stuck: stuck after message \
         {stuck_at:?}, dropped at {dropped_at}, {received_while_stuck} received in between"
    );
    eprintln!("slow: stuck after {stuck_at:?}, dropped at {dropped_at}, {received_while_stuck} received while stuck");
    talker.expect_next("* slow left (too slow)");
    // The dropped connection ends (after whatever was already in flight).
    slow.expect_closed_within(T);
    // Everyone else carries on.
    fast.send_line("still fine");
    talker.expect_next("[fast] still fine");
}
