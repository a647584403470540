//! The line port: raw TCP, where `nc`, `telnet` and chat-client connect.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_common::{Frame, LineFramer};

use super::input;
use crate::connection::{self, Cleanup, End, LineSource, Status};
use crate::peer::Peer;
use crate::shared::Shared;

/// Too big for the allocator's per-thread cache, so an idle thread keeps none of it.
const READ_BUFFER: usize = 4096;

/// Serves a connection on the line port. Never inlined into the thread's closure, which also
/// holds the web port's handler: an idle connection's resident stack is the frames it waits under.
#[inline(never)]
pub fn serve(shared: Arc<Shared>, peer: Arc<Peer>, login_deadline: Instant) {
    let _cleanup = Cleanup {
        shared: &shared,
        peer: &peer,
    };
    let config = shared.config();
    if peer.tls().is_none()
        && config.proxy_protocol
        && shared.access.is_trusted(peer.addr.ip())
        && !take_proxy_header(&shared, &peer, login_deadline)
    {
        return;
    }
    let mut source = TcpLines {
        peer: Arc::clone(&peer),
        framer: LineFramer::new(config.max_line as usize),
        partial_flush: config.partial_flush(),
        partial_since: None,
    };
    // Not held for the connection's life: a reload's settings replace these for new ones.
    drop(config);
    connection::serve(&shared, &peer, &mut source, login_deadline);
}

/// `--proxy-protocol`: a trusted address (a load balancer) starts with a PROXY header naming
/// the user, whose address then counts for limits, bans and logs. False: the connection goes.
#[inline(never)]
fn take_proxy_header(shared: &Shared, peer: &Arc<Peer>, deadline: Instant) -> bool {
    let client = match super::proxy::read_header(peer, deadline) {
        Ok(super::proxy::Origin::Client(ip)) => ip,
        Ok(super::proxy::Origin::Unknown) => return true,
        Err(why) => {
            tracing::warn!(peer = peer.id, addr = %peer.addr, why, "refused: a trusted address must send a PROXY header");
            return false;
        }
    };
    match shared
        .registry
        .readdress(peer.id, shared.access.admission(client))
    {
        Ok(()) => {
            tracing::info!(peer = peer.id, addr = %peer.addr, %client, "proxied");
            true
        }
        Err(refusal) => {
            tracing::warn!(peer = peer.id, %client, reason = refusal.reason(), "refused");
            shared
                .registry
                .reply(peer, &chat_common::wire::error(refusal.reason()));
            peer.send_close(super::CloseReason::Policy);
            peer.wait_drained(Instant::now() + Duration::from_secs(1));
            false
        }
    }
}

/// Lines from a raw byte stream, with any of the line endings PROTOCOL.md section 1 allows, and
/// an unterminated line taken as a line after `--partial-flush-ms` of silence.
struct TcpLines {
    peer: Arc<Peer>,
    framer: LineFramer,
    partial_flush: Option<Duration>,
    /// When the unterminated bytes now in the framer last grew.
    partial_since: Option<Instant>,
}

impl LineSource for TcpLines {
    fn read(&mut self, deadline: Option<Instant>, frames: &mut Vec<Frame>) -> Status {
        match input::wait(&self.peer, deadline) {
            Ok(true) => {}
            Ok(false) => return Status::Open,
            Err(e) => return Status::Closed(End::Broken(e)),
        }
        self.receive(frames)
    }

    fn due(&self) -> Option<Instant> {
        self.partial_since
            .zip(self.partial_flush)
            .map(|(since, wait)| since + wait)
    }

    fn on_due(&mut self, _now: Instant, frames: &mut Vec<Frame>) -> Status {
        self.partial_since = None;
        frames.extend(self.framer.take_partial());
        Status::Open
    }

    fn max_line(&self) -> usize {
        self.framer.max_line()
    }
}

impl TcpLines {
    /// Reads what has arrived. Kept out of line so `read`, the frame an idle connection waits
    /// in, stays small: every stack page a waiting thread has touched stays resident.
    #[inline(never)]
    fn receive(&mut self, frames: &mut Vec<Frame>) -> Status {
        // The buffer exists only while there is input, so an idle connection holds none.
        let mut buf = vec![0u8; READ_BUFFER];
        match input::read_available(&self.peer, &mut buf) {
            Ok(0) => {
                // The client closed its side: what it sent last still counts.
                frames.extend(self.framer.take_partial());
                Status::Closed(End::Eof)
            }
            Ok(n) => {
                self.framer.feed(&buf[..n], frames);
                self.partial_since = self.framer.has_partial().then(Instant::now);
                Status::Open
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Status::Open
            }
            Err(e) => Status::Closed(End::Broken(e)),
        }
    }
}
