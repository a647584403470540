//! The registry's state and the operations on it that run under its lock: rooms, sessions,
//! fan-out to a room, and settling evictions.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use chat_common::{key, wire};
use indexmap::{IndexMap, IndexSet};

use super::bus::{Event, Outbox, ServerId};
use super::history::{now_ms, topic_line, Entry, RoomLog};
use super::{Evicted, LOBBY};
use crate::peer::{Peer, PeerId};
use crate::store::{HistoryRow, Store};

pub(super) struct Session {
    pub(super) name: String,
    pub(super) room: String,
    /// Gave the operator password (`/oper`).
    pub(super) oper: bool,
}

/// An address that may not connect, until `until` (none: until unbanned).
pub(super) struct Ban {
    pub(super) ip: IpAddr,
    /// The user it was set on, if it was set by name.
    pub(super) name: Option<String>,
    pub(super) until: Option<Instant>,
    pub(super) by: String,
}

impl Ban {
    pub(super) fn active(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

pub(super) struct Room {
    pub(super) name: String,
    pub(super) members: IndexMap<PeerId, Arc<Peer>>,
    /// In a cluster: the name keys of members on other servers.
    pub(super) remote: IndexSet<String>,
    pub(super) log: RoomLog,
}

impl Room {
    pub(super) fn new(name: &str) -> Self {
        Room {
            name: name.to_owned(),
            members: IndexMap::new(),
            remote: IndexSet::new(),
            log: RoomLog::default(),
        }
    }
}

/// How much rooms remember.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistorySettings {
    /// Messages kept per room (`--history`).
    pub keep: usize,
    /// Messages shown on entering a room (`--history-on-join`).
    pub on_join: usize,
    /// History and topics outlive their room (they are on disk): an emptied room's memory is
    /// kept for when it is entered again.
    pub outlive_rooms: bool,
}

/// Empty rooms' memories kept at most, oldest dropped first; the disk keeps them all.
const MAX_ARCHIVED_ROOMS: usize = 1000;

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
    /// The address each connection counts against (behind a proxy, the user's).
    pub(super) conn_ips: HashMap<PeerId, IpAddr>,
    /// Connections held per address.
    pub(super) per_ip: HashMap<IpAddr, u32>,
    /// Connections that have not logged in, oldest (lowest id) first: the ones a full server
    /// displaces.
    pub(super) pre_login: BTreeSet<PeerId>,
    pub(super) bans: Vec<Ban>,
    /// Muted name keys, until when (none: until unmuted).
    pub(super) mutes: HashMap<String, Option<Instant>>,
    pub(super) history: HistorySettings,
    /// The memories of rooms that emptied, by room key, with the room's name.
    pub(super) archived: IndexMap<String, (String, RoomLog)>,
    /// The disk, with `--data-dir`: rows are handed to it without waiting.
    pub(super) store: Option<Arc<Store>>,
    /// In a cluster: where events go (see [`super::bus`]).
    pub(super) bus: Option<Outbox>,
    /// In a cluster: users of other servers, by name key.
    pub(super) remote: HashMap<String, RemoteUser>,
    /// Connections to close once the lock is released (thrown out by an event).
    pub(super) dismissed: Vec<Arc<Peer>>,
    /// In a cluster: users whose login, `/join` or `/nick` has not come back from Redis yet;
    /// their connection waits for it before reading on (see [`super::Registry::settle`]).
    pub(super) awaiting: HashSet<PeerId>,
}

/// A user logged in on another server of the cluster.
pub(super) struct RemoteUser {
    pub(super) name: String,
    pub(super) room: String,
    pub(super) server: ServerId,
    pub(super) ip: IpAddr,
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
    pub(super) fn banned(&self, ip: IpAddr, now: Instant) -> bool {
        self.bans.iter().any(|ban| ban.ip == ip && ban.active(now))
    }

    pub(super) fn muted(&self, name: &str, now: Instant) -> bool {
        // Checked for every message: no allocation (the name key) while nobody is muted.
        !self.mutes.is_empty()
            && self
                .mutes
                .get(&key(name))
                .is_some_and(|until| until.is_none_or(|until| now < until))
    }

    pub(super) fn count_ip(&mut self, id: PeerId, ip: IpAddr) {
        self.conn_ips.insert(id, ip);
        *self.per_ip.entry(ip).or_default() += 1;
    }

    pub(super) fn uncount_ip(&mut self, id: PeerId) {
        let Some(ip) = self.conn_ips.remove(&id) else {
            return;
        };
        if let Some(count) = self.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

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
                let local = room
                    .members
                    .keys()
                    .filter_map(|id| self.sessions.get(id).map(|s| s.name.clone()));
                let remote = room
                    .remote
                    .iter()
                    .filter_map(|k| self.remote.get(k).map(|user| user.name.clone()));
                local.chain(remote).collect()
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

    /// Takes a peer out of a room, which may then disappear (see [`State::drop_if_empty`]).
    pub(super) fn leave_room(&mut self, room_key: &str, id: PeerId) {
        let now_empty = match self.rooms.get_mut(room_key) {
            Some(room) => {
                room.members.swap_remove(&id);
                room.members.is_empty() && room.remote.is_empty()
            }
            None => false,
        };
        if now_empty {
            self.drop_if_empty(room_key);
        }
    }

    /// An empty room other than the lobby disappears, and its memory with it unless memories
    /// outlive rooms.
    pub(super) fn drop_if_empty(&mut self, room_key: &str) {
        let empty = self
            .rooms
            .get(room_key)
            .is_some_and(|room| room.members.is_empty() && room.remote.is_empty());
        if empty && room_key != LOBBY {
            if let Some(room) = self.rooms.remove(room_key) {
                if self.history.outlive_rooms && !room.log.is_empty() {
                    if self.archived.len() >= MAX_ARCHIVED_ROOMS {
                        self.archived.shift_remove_index(0);
                    }
                    self.archived
                        .insert(room_key.to_owned(), (room.name, room.log));
                }
            }
        }
    }

    /// The room, created (with its archived memory, if any) on first entry.
    pub(super) fn open_room(&mut self, room_key: &str, name: &str) {
        if self.rooms.contains_key(room_key) {
            return;
        }
        let mut room = Room::new(name);
        if let Some((archived_name, log)) = self.archived.shift_remove(room_key) {
            room.name = archived_name;
            room.log = log;
        }
        self.rooms.insert(room_key.to_owned(), room);
    }

    /// A room's memory, wherever it is: in the room, archived, or new in the archive.
    pub(super) fn room_log(&mut self, room_key: &str, room_name: &str) -> &mut RoomLog {
        if self.rooms.contains_key(room_key) {
            return &mut self.rooms.get_mut(room_key).expect("checked").log;
        }
        &mut self
            .archived
            .entry(room_key.to_owned())
            .or_insert_with(|| (room_name.to_owned(), RoomLog::default()))
            .1
    }

    /// Adds a delivered message to its room's memory.
    pub(super) fn remember(&mut self, room_key: &str, line: String) {
        self.remember_at(room_key, line, now_ms());
    }

    /// Adds a message said at `at_ms` (Unix ms) to its room's memory.
    pub(super) fn remember_at(&mut self, room_key: &str, line: String, at_ms: i64) {
        let keep = self.history.keep;
        if keep == 0 {
            return;
        }
        if let Some(room) = self.rooms.get_mut(room_key) {
            if let Some(store) = &self.store {
                store.record_message(HistoryRow {
                    room_key: room_key.to_owned(),
                    room_name: room.name.clone(),
                    at_ms,
                    line: line.clone(),
                });
            }
            room.log.remember(
                Entry {
                    at_ms,
                    line: line.into(),
                },
                keep,
            );
        }
    }

    /// What a user entering a room is shown after the welcome or join reply: the topic, then
    /// the last messages.
    pub(super) fn show_room_memory(&self, room_key: &str, peer: &Arc<Peer>, evicted: &mut Evicted) {
        let Some(room) = self.rooms.get(room_key) else {
            return;
        };
        if let Some(topic) = &room.log.topic {
            self.deliver(peer, &topic_line(topic), evicted);
        }
        for line in room.log.last_lines(self.history.on_join) {
            self.deliver(peer, &line, evicted);
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

    /// A connection logs in as `name`, into the lobby (its name is already in `names`).
    pub(super) fn start_session(&mut self, id: PeerId, name: &str) {
        let (name, room, oper) = (name.to_owned(), LOBBY.to_owned(), false);
        self.sessions.insert(id, Session { name, room, oper });
        self.pre_login.remove(&id);
        bump(&self.stats.logins, 1);
    }

    /// Logs a user out: frees its name and takes it out of its room, telling nobody.
    pub(super) fn end_session(&mut self, id: PeerId) -> Option<Session> {
        let session = self.sessions.remove(&id)?;
        self.names.remove(&key(&session.name));
        self.leave_room(&session.room, id);
        Some(session)
    }

    /// Logs a user out and tells its room `* NAME left`, with the reason in brackets.
    pub(super) fn depart(
        &mut self,
        id: PeerId,
        reason: Option<&str>,
        evicted: &mut Evicted,
    ) -> Option<String> {
        let session = self.end_session(id)?;
        let line = match reason {
            Some(reason) => wire::notice(&format!("{} left ({reason})", session.name)),
            None => wire::notice(&format!("{} left", session.name)),
        };
        if self.bus.is_some() {
            let name = session.name.clone();
            let (room, tell, peer) = (session.room, None, id);
            self.emit(
                Event::Left {
                    name,
                    room,
                    line,
                    tell,
                    peer,
                },
                evicted,
            );
            return Some(session.name);
        }
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
