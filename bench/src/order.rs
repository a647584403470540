//! One order for everybody: does every receiver see the messages of all senders in the same
//! sequence?
//!
//! A server that keeps one order per room (one queue per room, or a cluster that orders a
//! room's messages in one place) gives every receiver the same interleaving of the senders'
//! messages; one that delivers from each sender's thread straight to the receivers may not.
//! Per-sender order alone (`out_of_order`) cannot tell these apart. So each receiver folds
//! every measured message it gets, as (sender index, seq) in arrival order, into a running
//! 64-bit digest: one multiply, xor and rotate per message, no allocation. At the end the
//! digests of the receivers that do not send (a sender never gets its own messages, so its
//! sequence differs by construction) and that got every message exactly once (the others are
//! already counted as lost or duplicated) are compared: the number of distinct digests is the
//! number of orders seen, 1 when everybody saw one order.

use serde::Serialize;

use crate::client::RecvStats;

/// The digest before any message (FNV-1a's offset basis).
pub const START: u64 = 0xcbf2_9ce4_8422_2325;
/// An odd multiplier with well-spread bits (2^64 / golden ratio).
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// Folds message `seq` of `sender` into `digest`. Word at a time in the manner of FNV-1a
/// (xor, then multiply), with a rotate so that the high bits feed the next step's low ones.
/// Each step is a bijection of the digest, so two receivers that differ in one step stay
/// different unless the rest of the sequence happens to map them together again.
#[inline]
pub fn step(digest: u64, sender: u32, seq: u64) -> u64 {
    // seq < 2^32 (marker::MAX_SEQ), so the pair fits one word.
    let v = (u64::from(sender) << 32) | (seq & 0xffff_ffff);
    (digest ^ v).wrapping_mul(MUL).rotate_left(27)
}

/// What the comparison found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Orders {
    /// Distinct orders among the receivers compared; `None` when no receiver could be
    /// compared (every client sends, or none of the others got every message).
    pub orders: Option<usize>,
    /// Receivers compared: not senders, and every message received exactly once.
    pub compared: usize,
}

/// Compares the digests of the receivers that do not send (client indexes `senders..`, the
/// senders being the first clients) and got exactly `sent_by[s]` messages from every sender s.
pub fn compare(stats: &[RecvStats], sent_by: &[u64], senders: usize) -> Orders {
    let mut digests: Vec<u64> = stats
        .iter()
        .skip(senders)
        .filter(|st| st.count == sent_by)
        .map(|st| st.order)
        .collect();
    let compared = digests.len();
    digests.sort_unstable();
    digests.dedup();
    Orders {
        orders: (compared > 0).then_some(digests.len()),
        compared,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receiver that got `msgs` ((sender, seq) in arrival order) from `senders` senders.
    fn recv(senders: usize, msgs: &[(u32, u64)]) -> RecvStats {
        let mut st = RecvStats::new(senders);
        for &(s, q) in msgs {
            st.count[s as usize] += 1;
            st.order = step(st.order, s, q);
        }
        st
    }

    const A: [(u32, u64); 4] = [(0, 1), (1, 1), (0, 2), (1, 2)];
    /// A's first two swapped: the same messages, in each sender's order, interleaved otherwise.
    const B: [(u32, u64); 4] = [(1, 1), (0, 1), (0, 2), (1, 2)];

    #[test]
    fn the_same_sequence_is_one_order() {
        let stats = [recv(2, &[]), recv(2, &[]), recv(2, &A), recv(2, &A)];
        let o = compare(&stats, &[2, 2], 2);
        assert_eq!(
            o,
            Orders {
                orders: Some(1),
                compared: 2
            }
        );
    }

    #[test]
    fn swapped_messages_are_two_orders() {
        let stats = [
            recv(2, &[]),
            recv(2, &[]),
            recv(2, &A),
            recv(2, &B),
            recv(2, &A),
        ];
        let o = compare(&stats, &[2, 2], 2);
        assert_eq!(
            o,
            Orders {
                orders: Some(2),
                compared: 3
            }
        );
        // Within one sender too.
        let c = [(0, 2), (1, 1), (0, 1), (1, 2)];
        let stats = [recv(2, &[]), recv(2, &[]), recv(2, &A), recv(2, &c)];
        assert_eq!(compare(&stats, &[2, 2], 2).orders, Some(2));
    }

    #[test]
    fn receivers_short_or_with_extras_and_senders_are_left_out() {
        let stats = [
            recv(2, &B),      // a sender: not compared, whatever it got
            recv(2, &A[..3]), // short one message
            recv(2, &A),
            recv(2, &[A[0], A[1], A[2], A[3], A[3]]), // a duplicate
        ];
        assert_eq!(
            compare(&stats, &[2, 2], 1),
            Orders {
                orders: Some(1),
                compared: 1
            }
        );
        // Nobody complete, or nobody who does not send: not measured.
        assert_eq!(
            compare(&stats[..2], &[2, 2], 1),
            Orders {
                orders: None,
                compared: 0
            }
        );
        assert_eq!(compare(&stats, &[2, 2], 4).orders, None);
    }

    #[test]
    fn digests_tell_apart_what_counts_cannot() {
        let d = |msgs: &[(u32, u64)]| recv(3, msgs).order;
        // Same messages, different interleavings of three senders: all distinct.
        let mut seen = vec![
            d(&[(0, 1), (1, 1), (2, 1)]),
            d(&[(0, 1), (2, 1), (1, 1)]),
            d(&[(1, 1), (0, 1), (2, 1)]),
            d(&[(1, 1), (2, 1), (0, 1)]),
            d(&[(2, 1), (0, 1), (1, 1)]),
            d(&[(2, 1), (1, 1), (0, 1)]),
        ];
        // Sender and seq do not stand in for each other.
        seen.push(d(&[(0, 2)]));
        seen.push(d(&[(2, 0)]));
        seen.push(d(&[(1, 1)]));
        let n = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), n);
        assert_eq!(recv(1, &[]).order, START);
    }
}
