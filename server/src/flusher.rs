//! Flusher threads: the only writers of client sockets.
//!
//! A peer with queued output is handed to its flusher once (until the queue empties), so under
//! load many lines pile up between two visits and go out in one `send`: fan-out costs far fewer
//! system calls than deliveries. A socket whose send buffer is full is parked in an epoll set
//! (mio) and resumed when it becomes writable, so a client that stops reading holds up nobody.
//! Sends use `MSG_DONTWAIT`, leaving the socket in blocking mode for its reader thread.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::peer::{FlushOutcome, Peer, PeerId, Schedule};

const WAKER: Token = Token(usize::MAX);

/// Hands peers with pending output to a flusher thread.
pub struct Flusher {
    ready: Sender<Arc<Peer>>,
    waker: Waker,
    /// The thread is (about to be) asleep in `poll` and needs a wake-up for new work.
    idle: AtomicBool,
    registry: mio::Registry,
}

impl Flusher {
    /// Starts one flusher thread.
    pub fn start(index: usize) -> anyhow::Result<Arc<Self>> {
        let poll = Poll::new().context("cannot create an epoll instance")?;
        let waker = Waker::new(poll.registry(), WAKER).context("cannot create a waker")?;
        let registry = poll
            .registry()
            .try_clone()
            .context("cannot clone the poll registry")?;
        let (ready, inbox) = crossbeam_channel::unbounded();
        let flusher = Arc::new(Self {
            ready,
            waker,
            idle: AtomicBool::new(false),
            registry,
        });
        let worker = Worker {
            flusher: Arc::clone(&flusher),
            poll,
            inbox,
            blocked: HashMap::new(),
        };
        thread::Builder::new()
            .name(format!("flusher-{index}"))
            .spawn(move || worker.run())
            .context("cannot start a flusher thread")?;
        Ok(flusher)
    }
}

impl Schedule for Flusher {
    /// Queues a peer whose output is waiting. Called once per peer until its queue empties.
    fn schedule(&self, peer: Arc<Peer>) {
        if self.ready.send(peer).is_err() {
            return;
        }
        // Pairs with the fence in `Worker::run`: either the worker sees this peer before it
        // sleeps, or this thread sees it idle and wakes it.
        fence(Ordering::SeqCst);
        if self.idle.swap(false, Ordering::SeqCst) {
            if let Err(e) = self.waker.wake() {
                tracing::error!(error = %e, "cannot wake a flusher");
            }
        }
    }
}

struct Worker {
    flusher: Arc<Flusher>,
    poll: Poll,
    inbox: Receiver<Arc<Peer>>,
    /// Peers whose socket is full, by token (= peer id).
    blocked: HashMap<PeerId, Arc<Peer>>,
}

impl Worker {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            // A bounded pass, so sockets that became writable are not starved by a busy inbox.
            for _ in 0..self.inbox.len() {
                match self.inbox.try_recv() {
                    Ok(peer) => self.flush(peer),
                    Err(_) => break,
                }
            }
            self.flusher.idle.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let timeout = if self.inbox.is_empty() {
                None
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "flusher poll failed");
                    thread::sleep(Duration::from_millis(10));
                }
            }
            self.flusher.idle.store(false, Ordering::SeqCst);
            for event in events.iter() {
                if event.token() == WAKER {
                    continue;
                }
                if let Some(peer) = self.blocked.remove(&(event.token().0 as PeerId)) {
                    self.flush(peer);
                }
            }
        }
    }

    fn flush(&mut self, peer: Arc<Peer>) {
        match peer.flush() {
            FlushOutcome::Idle => {}
            FlushOutcome::Blocked => self.wait_writable(peer),
        }
    }

    /// Parks a peer until its socket can take more. Re-arming an edge-triggered registration
    /// reports a socket that is already writable, so no wake-up is lost in between.
    fn wait_writable(&mut self, peer: Arc<Peer>) {
        let fd = peer.socket().as_raw_fd();
        let token = Token(peer.id as usize);
        let mut source = SourceFd(&fd);
        let result = {
            let mut sending = peer.sending.lock();
            let result = if sending.registered {
                self.flusher
                    .registry
                    .reregister(&mut source, token, Interest::WRITABLE)
            } else {
                self.flusher
                    .registry
                    .register(&mut source, token, Interest::WRITABLE)
            };
            sending.registered |= result.is_ok();
            result
        };
        match result {
            Ok(()) => {
                self.blocked.insert(peer.id, peer);
            }
            Err(e) => {
                tracing::warn!(peer = peer.id, error = %e, "cannot wait for a full socket; dropping its output");
                peer.disconnect();
                // Let the flush settle the queue state and wake anyone waiting for a drain.
                let _ = peer.flush();
            }
        }
    }
}

/// A fixed set of flusher threads; a peer always uses the same one.
pub struct Flushers {
    all: Vec<Arc<Flusher>>,
}

impl Flushers {
    pub fn start(count: usize) -> anyhow::Result<Self> {
        let all = (0..count.max(1))
            .map(Flusher::start)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { all })
    }

    pub fn for_peer(&self, id: PeerId) -> Arc<dyn Schedule> {
        self.all[(id % self.all.len() as u64) as usize].clone()
    }
}
