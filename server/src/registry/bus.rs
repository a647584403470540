//! What servers of a cluster tell each other (PROTOCOL.md section 15), and the outbox the
//! registry hands its events to.
//!
//! In a cluster, a room's lines are not delivered where they are said: the registry turns each
//! change other servers must see into an [`Event`], the cluster's publisher sends it through
//! Redis, and every server (the sender's own included) applies the events in the one order they
//! come back in. So every member of a room, on any server, sees the room in the same order.
//!
//! The registry does not know Redis: it only queues events here. While Redis is unreachable the
//! outbox is marked down and events are applied at once, locally, so the users of this server
//! can still talk to each other.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crossbeam_channel::Sender;
use serde::{Deserialize, Serialize};

use crate::peer::PeerId;

/// A server's name in the cluster, new at every start.
pub type ServerId = Arc<str>;

/// One user as another server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterUser {
    pub name: String,
    /// Room key.
    pub room: String,
    pub ip: IpAddr,
}

/// A change every server of the cluster applies, in the order Redis hands them out.
///
/// `peer` fields are the connection id on the server that sent the event: that server uses
/// them to find its own user; the name claim in Redis is held by `SERVER/PEER`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    /// Logged in, into the lobby.
    Joined {
        name: String,
        peer: PeerId,
        ip: IpAddr,
    },
    Said {
        name: String,
        room: String,
        text: String,
        peer: PeerId,
        at_ms: i64,
    },
    /// `/me`.
    Acted {
        name: String,
        room: String,
        text: String,
        at_ms: i64,
    },
    /// `/join`: `display` is the new room's name as written.
    Moved {
        name: String,
        from: String,
        to: String,
        display: String,
        peer: PeerId,
    },
    Renamed {
        old: String,
        new: String,
        room: String,
        peer: PeerId,
    },
    /// Logged out; the room gets `line`, and `tell` (an operator) gets it too if elsewhere.
    Left {
        name: String,
        room: String,
        line: String,
        tell: Option<String>,
        peer: PeerId,
    },
    /// `/msg` to a user of another server.
    Private {
        from: String,
        to: String,
        text: String,
    },
    Topic {
        room: String,
        display: String,
        name: String,
        text: String,
    },
    /// `/kick`: the user's own server throws it out.
    Kick {
        name: String,
        told: String,
        announced: String,
        by: String,
    },
    Ban {
        ip: IpAddr,
        name: Option<String>,
        until_ms: Option<i64>,
        by: String,
        span: String,
    },
    Unban {
        ips: Vec<IpAddr>,
    },
    Mute {
        name: String,
        until_ms: Option<i64>,
        announced: String,
        by: String,
    },
    Unmute {
        name: String,
        announced: String,
        by: String,
    },
    /// An account made, changed (`Some`) or given back (`None`); Redis has it already.
    Account {
        key: String,
        entry: Option<(String, String)>,
    },
    /// A live server's heartbeat.
    Beat,
    /// A server (re)joined the cluster: every other answers with its roster.
    Hello,
    /// Every user of the sending server.
    Roster {
        users: Vec<RosterUser>,
    },
    /// A server went away (died, lost Redis, or shut down): its users leave with `reason`.
    Gone {
        server: String,
        reason: String,
    },
}

/// A batch of events from one server, as published.
#[derive(Debug, Serialize, Deserialize)]
pub struct Batch {
    #[serde(rename = "s")]
    pub server: String,
    #[serde(rename = "e")]
    pub events: Vec<Event>,
}

/// How this server stands with the cluster's Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Unreachable: events apply locally, logins are refused.
    Down = 0,
    /// Reachable, events go through Redis, but the other servers' rosters are not all in yet:
    /// logins still wait, or a newcomer would not see who is there.
    Syncing = 1,
    /// In the cluster.
    Ready = 2,
}

/// The [`LinkState`], shared by the cluster's threads and the registry.
#[derive(Debug, Default)]
pub struct Link(AtomicU8);

impl Link {
    pub fn get(&self) -> LinkState {
        match self.0.load(Ordering::Acquire) {
            0 => LinkState::Down,
            1 => LinkState::Syncing,
            _ => LinkState::Ready,
        }
    }

    pub fn set(&self, state: LinkState) {
        self.0.store(state as u8, Ordering::Release);
    }
}

/// Where the registry queues events for the cluster.
#[derive(Clone)]
pub struct Outbox {
    pub me: ServerId,
    queue: Sender<Event>,
    link: Arc<Link>,
}

impl Outbox {
    pub fn new(me: ServerId, queue: Sender<Event>, link: Arc<Link>) -> Self {
        Self { me, queue, link }
    }

    /// In the cluster: new logins are taken.
    pub fn is_ready(&self) -> bool {
        self.link.get() == LinkState::Ready
    }

    /// Queues an event for Redis; `Err` gives it back while Redis is unreachable.
    pub(super) fn send(&self, event: Event) -> Result<(), Event> {
        if self.link.get() == LinkState::Down {
            return Err(event);
        }
        self.queue.send(event).map_err(|e| e.into_inner())
    }
}

/// The cluster's name space: a name is claimed in Redis, held by `SERVER/PEER`, before a user
/// may use it. Called with no registry lock held (it is a round trip to Redis).
pub trait NameClaims: Send + Sync {
    /// `Ok(false)`: a live server's user holds the name.
    fn claim(&self, name_key: &str, peer: PeerId) -> Result<bool, ClusterDown>;
    /// Gives back a claim that was not used after all.
    fn release(&self, name_key: &str, peer: PeerId);
}

/// Redis cannot be reached (or this server is not yet in sync with the cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterDown;

/// The `! ` text new logins get while the cluster is unavailable (PROTOCOL.md section 15).
pub const CLUSTER_DOWN: &str = "cluster unavailable, try again later";
