//! The registry's state and the operations on it that run under its lock: rooms, sessions,
//! fan-out to a room, and settling evictions.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use chat_common::{key, wire};
use indexmap::IndexMap;

use super::{Evicted, LOBBY};
use crate::peer::{Peer, PeerId};

pub(super) struct Session {
    pub(super) name: String,
    pub(super) room: String,
}

pub(super) struct Room {
    pub(super) name: String,
    pub(super) members: IndexMap<PeerId, Arc<Peer>>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) connections: HashMap<PeerId, Arc<Peer>>,
    pub(super) sessions: HashMap<PeerId, Session>,
    /// Name key -> peer.
    pub(super) names: HashMap<String, PeerId>,
    /// Room key -> room.
    pub(super) rooms: HashMap<String, Room>,
    pub(super) shutting_down: bool,
    pub(super) stats: Stats,
}

/// Counters for `/metrics`, kept under the registry lock (cells, so counting needs no `&mut`).
#[derive(Default)]
pub(super) struct Stats {
    pub(super) messages_relayed: Cell<u64>,
    pub(super) lines_delivered: Cell<u64>,
    pub(super) dropped_slow: Cell<u64>,
    pub(super) logins: Cell<u64>,
    pub(super) logins_refused: Cell<u64>,
    pub(super) connections_total: Cell<u64>,
}

pub(super) fn bump(counter: &Cell<u64>, by: u64) {
    counter.set(counter.get() + by);
}

impl State {
    pub(super) fn room_display(&self, room_key: &str) -> String {
        self.rooms
            .get(room_key)
            .map_or_else(|| room_key.to_owned(), |room| room.name.clone())
    }

    pub(super) fn member_names(&self, room_key: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .rooms
            .get(room_key)
            .map(|room| {
                room.members
                    .keys()
                    .filter_map(|id| self.sessions.get(id).map(|s| s.name.clone()))
                    .collect()
            })
            .unwrap_or_default();
        names.sort_unstable_by_key(|name| key(name));
        names
    }

    pub(super) fn enter_room(&mut self, room_key: &str, peer: &Arc<Peer>) {
        if let Some(room) = self.rooms.get_mut(room_key) {
            room.members.insert(peer.id, Arc::clone(peer));
        }
    }

    /// Takes a peer out of a room; an empty room other than the lobby disappears.
    pub(super) fn leave_room(&mut self, room_key: &str, id: PeerId) {
        let now_empty = match self.rooms.get_mut(room_key) {
            Some(room) => {
                room.members.swap_remove(&id);
                room.members.is_empty()
            }
            None => false,
        };
        if now_empty && room_key != LOBBY {
            self.rooms.remove(room_key);
        }
    }

    /// Queues one line to every member of a room but `except`.
    pub(super) fn broadcast(
        &self,
        room_key: &str,
        line: &str,
        except: Option<PeerId>,
        evicted: &mut Evicted,
    ) {
        let Some(room) = self.rooms.get(room_key) else {
            return;
        };
        let mut delivered = 0;
        for (&id, peer) in &room.members {
            if Some(id) == except {
                continue;
            }
            delivered += 1;
            // Each peer frames the line itself (CRLF or a WebSocket message) straight into its
            // queue: a copy per recipient, no allocation.
            if peer.send_line(line).is_err() {
                evicted.push(Arc::clone(peer));
            }
        }
        bump(&self.stats.lines_delivered, delivered);
    }

    /// Logs a user out and tells its room `* NAME left`, with the reason in brackets.
    pub(super) fn depart(
        &mut self,
        id: PeerId,
        reason: Option<&str>,
        evicted: &mut Evicted,
    ) -> Option<String> {
        let session = self.sessions.remove(&id)?;
        self.names.remove(&key(&session.name));
        self.leave_room(&session.room, id);
        let line = match reason {
            Some(reason) => wire::notice(&format!("{} left ({reason})", session.name)),
            None => wire::notice(&format!("{} left", session.name)),
        };
        self.broadcast(&session.room, &line, None, evicted);
        Some(session.name)
    }

    /// Evicted peers leave their rooms as `too slow`; telling the rooms may evict more.
    pub(super) fn settle_evictions(&mut self, evicted: &mut Evicted) {
        let mut next = 0;
        while next < evicted.len() {
            let id = evicted[next].id;
            next += 1;
            self.depart(id, Some("too slow"), evicted);
        }
        // A peer can overflow twice (say, once per broadcast); disconnect it once.
        evicted.sort_unstable_by_key(|peer| peer.id);
        evicted.dedup_by_key(|peer| peer.id);
        bump(&self.stats.dropped_slow, evicted.len() as u64);
    }
}

impl State {
    /// Queues one line to one peer.
    pub(super) fn deliver(&self, peer: &Arc<Peer>, line: &str, evicted: &mut Evicted) {
        bump(&self.stats.lines_delivered, 1);
        deliver(peer, line, evicted);
    }
}

fn deliver(peer: &Arc<Peer>, line: &str, evicted: &mut Evicted) {
    if peer.send_line(line).is_err() {
        evicted.push(Arc::clone(peer));
    }
}
