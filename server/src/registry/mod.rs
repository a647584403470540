//! Who is connected, who is logged in under which name, and who is in which room.
//!
//! All of it sits behind one `parking_lot::Mutex`, and every line to a room is queued while that
//! lock is held: queuing is a memory copy (see [`Peer::send`]), so the lock is never held across
//! socket I/O, and every member of a room sees the room's lines in one order.
//!
//! A peer whose output queue overflows while a line is queued is evicted on the spot: it leaves
//! its room with `* NAME left (too slow)` (which may evict others in turn), and its socket is shut
//! down after the lock is released.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chat_common::{key, wire, NameError};
use parking_lot::{Condvar, Mutex};

use crate::peer::{Peer, PeerId};

mod admission;
mod apply;
#[cfg(test)]
mod apply_tests;
pub mod bus;
mod clustered;
mod clustered_oper;
mod history;
mod listing;
mod memory;
mod moderation;
mod remote;
mod restore;
mod state;

pub use admission::{Admission, AdmitError};
pub use moderation::{Muted, Target};
pub use state::HistorySettings;

use bus::{NameClaims, Outbox};

use listing::{list_lines, plural, welcome_line};
use state::{bump, Room, State};

use crate::transport::CloseReason;

pub const LOBBY: &str = "lobby";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    Invalid(NameError),
    Taken(String),
    /// `/nick` to the name the user already has.
    Same(String),
    /// The connection is being closed.
    Closed,
    /// In a cluster, Redis cannot be reached.
    ClusterDown,
}

impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "{e}"),
            Self::Taken(name) => write!(f, "the name {name} is taken"),
            Self::Same(name) => write!(f, "you are already called {name}"),
            Self::Closed => write!(f, "connection closing"),
            Self::ClusterDown => f.write_str(bus::CLUSTER_DOWN),
        }
    }
}

pub struct Registry {
    /// `--max-clients`; a reload may change it.
    max_clients: AtomicUsize,
    next_id: AtomicU64,
    state: Mutex<State>,
    /// In a cluster: the name space in Redis (see [`bus`]).
    claims: Option<Arc<dyn NameClaims>>,
    /// Wakes connections waiting for their own event to come back (see [`Registry::settle`]).
    settled: Condvar,
}

/// Peers that overflowed while the lock was held; shut down once it is released.
pub(crate) type Evicted = Vec<Arc<Peer>>;

impl Registry {
    pub fn new(max_clients: usize, history: HistorySettings) -> Self {
        let mut state = State {
            history,
            ..State::default()
        };
        state.rooms.insert(LOBBY.to_owned(), Room::new(LOBBY));
        Self {
            max_clients: AtomicUsize::new(max_clients),
            next_id: AtomicU64::new(1),
            state: Mutex::new(state),
            claims: None,
            settled: Condvar::new(),
        }
    }

    /// Makes this registry one server of a cluster: room changes go out as events through
    /// `outbox`, and names are claimed with `claims`. Call before serving.
    pub fn join_cluster(&mut self, outbox: Outbox, claims: Arc<dyn NameClaims>) {
        let state = self.state.get_mut();
        state.bus = Some(outbox);
        state.history.outlive_rooms = true;
        self.claims = Some(claims);
    }

    /// Runs `f` under the lock, settles evictions it caused, then disconnects the evicted peers.
    fn with_state<R>(&self, f: impl FnOnce(&mut State, &mut Evicted) -> R) -> R {
        let mut evicted = Vec::new();
        let result = {
            let mut state = self.state.lock();
            let result = f(&mut state, &mut evicted);
            state.settle_evictions(&mut evicted);
            (result, std::mem::take(&mut state.dismissed))
        };
        let (result, dismissed) = result;
        for peer in evicted {
            tracing::info!(peer = peer.id, addr = %peer.addr, "dropped: too slow");
            peer.abort(CloseReason::Policy);
        }
        for peer in dismissed {
            peer.close_after_output(CloseReason::Policy);
        }
        result
    }

    /// A new `--max-clients` (SIGHUP): connections held beyond it stay, new ones wait.
    pub fn set_max_clients(&self, max_clients: usize) {
        self.max_clients.store(max_clients, Ordering::Relaxed);
    }

    /// A new connection's id: unique across every port, never reused.
    pub fn next_peer_id(&self) -> PeerId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Logs a connection in under `name` in the lobby. The welcome line goes to the user and
    /// `* NAME joined` to the lobby, in one step, so nothing said in the room can come between.
    pub fn login(&self, peer: &Arc<Peer>, raw_name: &str) -> Result<String, LoginError> {
        let valid = chat_common::validate_name(raw_name).map_err(LoginError::Invalid);
        if self.claims.is_some() {
            let name = valid.inspect_err(|_| {
                bump(&self.state.lock().stats.logins_refused, 1);
            })?;
            return self.cluster_login(peer, name).inspect_err(|_| {
                bump(&self.state.lock().stats.logins_refused, 1);
            });
        }
        self.with_state(|state, evicted| {
            let name = match valid {
                Ok(name) => name,
                Err(refusal) => {
                    bump(&state.stats.logins_refused, 1);
                    return Err(refusal);
                }
            };
            if !state.connections.contains_key(&peer.id) {
                // Displaced or dismissed while the name was on its way.
                return Err(LoginError::Closed);
            }
            let name_key = key(name);
            if state.names.contains_key(&name_key) {
                bump(&state.stats.logins_refused, 1);
                return Err(LoginError::Taken(name.to_owned()));
            }
            state.names.insert(name_key, peer.id);
            state.start_session(peer.id, name);
            let others = state.rooms.get(LOBBY).map_or(0, |room| room.members.len());
            let welcome = welcome_line(name, others + 1);
            state.deliver(peer, &welcome, evicted);
            state.broadcast(
                LOBBY,
                &wire::notice(&format!("{name} joined")),
                None,
                evicted,
            );
            state.enter_room(LOBBY, peer);
            state.show_room_memory(LOBBY, peer, evicted);
            Ok(name.to_owned())
        })
    }

    /// Who is logged in under `name` (any case), if anyone.
    pub fn id_of(&self, name: &str) -> Option<PeerId> {
        self.state.lock().names.get(&key(name)).copied()
    }

    /// Someone is logged in under `name` (any case), here or, in a cluster, on another server.
    pub fn is_online(&self, name: &str) -> bool {
        self.state.lock().name_in_use(&key(name))
    }

    /// The user's current name, if logged in.
    pub fn name_of(&self, id: PeerId) -> Option<String> {
        self.state.lock().sessions.get(&id).map(|s| s.name.clone())
    }

    /// A line from `id` to everyone else in its room.
    pub fn say(&self, id: PeerId, text: &str) -> Result<(), Muted> {
        if self.claims.is_some() {
            return self.cluster_say(id, text, false);
        }
        self.with_state(|state, evicted| {
            if let Some(session) = state.sessions.get(&id) {
                if state.muted(&session.name, Instant::now()) {
                    return Err(Muted);
                }
                let line = wire::message(&session.name, text);
                let room = session.room.clone();
                bump(&state.stats.messages_relayed, 1);
                state.broadcast(&room, &line, Some(id), evicted);
                state.remember(&room, line);
            }
            Ok(())
        })
    }

    /// `/me`: `* NAME action` to the whole room, sender included.
    pub fn act(&self, id: PeerId, action: &str) -> Result<(), Muted> {
        if self.claims.is_some() {
            return self.cluster_say(id, action, true);
        }
        self.with_state(|state, evicted| {
            if let Some(session) = state.sessions.get(&id) {
                if state.muted(&session.name, Instant::now()) {
                    return Err(Muted);
                }
                let line = wire::notice(&format!("{} {action}", session.name));
                let room = session.room.clone();
                bump(&state.stats.messages_relayed, 1);
                state.broadcast(&room, &line, None, evicted);
                state.remember(&room, line);
            }
            Ok(())
        })
    }

    /// `/msg`: returns false when no user has that name.
    pub fn whisper(&self, from: &Arc<Peer>, to_name: &str, text: &str) -> bool {
        if self.claims.is_some() && self.id_of(to_name).is_none() {
            return self.cluster_whisper(from, to_name, text);
        }
        self.with_state(|state, evicted| {
            let Some(sender) = state.sessions.get(&from.id) else {
                return true;
            };
            let Some(target_id) = state.names.get(&key(to_name)).copied() else {
                return false;
            };
            let (Some(target), Some(target_session)) = (
                state.connections.get(&target_id),
                state.sessions.get(&target_id),
            ) else {
                return false;
            };
            bump(&state.stats.messages_relayed, 1);
            state.deliver(target, &wire::private_received(&sender.name, text), evicted);
            state.deliver(
                from,
                &wire::private_sent(&target_session.name, text),
                evicted,
            );
            true
        })
    }

    /// `/nick`: renames the user and tells its room.
    pub fn rename(&self, id: PeerId, raw_name: &str) -> Result<(), LoginError> {
        let new = chat_common::validate_name(raw_name).map_err(LoginError::Invalid)?;
        if self.claims.is_some() {
            return self.cluster_rename(id, new);
        }
        self.with_state(|state, evicted| {
            let new_key = key(new);
            let Some(session) = state.sessions.get(&id) else {
                return Ok(());
            };
            let old = session.name.clone();
            let room = session.room.clone();
            if old == new {
                return Err(LoginError::Same(old));
            }
            match state.names.get(&new_key) {
                Some(&owner) if owner != id => return Err(LoginError::Taken(new.to_owned())),
                _ => {}
            }
            state.names.remove(&key(&old));
            // A mute follows the user to the new name.
            if let Some(until) = state.mutes.remove(&key(&old)) {
                state.mutes.insert(new_key.clone(), until);
                if let Some(store) = &state.store {
                    store.delete_mute(&key(&old));
                    let until_ms = until.map(|t| {
                        let left = t.saturating_duration_since(Instant::now()).as_millis();
                        crate::store::now_ms()
                            .saturating_add(i64::try_from(left).unwrap_or(i64::MAX))
                    });
                    store.save_mute(crate::store::MuteRow {
                        name_key: new_key.clone(),
                        until_ms,
                    });
                }
            }
            state.names.insert(new_key, id);
            if let Some(session) = state.sessions.get_mut(&id) {
                session.name = new.to_owned();
            }
            let line = wire::notice(&format!("{old} is now known as {new}"));
            state.broadcast(&room, &line, None, evicted);
            Ok(())
        })
    }

    /// `/join`: moves the user to `room_name`, creating the room if needed.
    pub fn join(&self, peer: &Arc<Peer>, room_name: &str) -> Result<(), String> {
        if self.claims.is_some() {
            return self.cluster_join(peer, room_name);
        }
        self.with_state(|state, evicted| {
            let Some(session) = state.sessions.get(&peer.id) else {
                return Ok(());
            };
            let new_key = key(room_name);
            if new_key == session.room {
                let current = state.room_display(&session.room);
                return Err(format!("you are already in {current}"));
            }
            let name = session.name.clone();
            let old_key = session.room.clone();
            let display = state
                .rooms
                .get(&new_key)
                .map(|room| room.name.clone())
                .or_else(|| state.archived.get(&new_key).map(|(name, _)| name.clone()))
                .unwrap_or_else(|| room_name.to_owned());
            state.leave_room(&old_key, peer.id);
            let left = wire::notice(&format!("{name} left (moved to {display})"));
            state.broadcast(&old_key, &left, None, evicted);
            state.broadcast(
                &new_key,
                &wire::notice(&format!("{name} joined")),
                None,
                evicted,
            );
            state.open_room(&new_key, room_name);
            state.enter_room(&new_key, peer);
            if let Some(session) = state.sessions.get_mut(&peer.id) {
                session.room = new_key.clone();
            }
            let names = state.member_names(&new_key);
            let head = format!(
                "you are now in {display}; {} {} here: ",
                names.len(),
                plural(names.len(), "user", "users")
            );
            for line in list_lines(&head, &names) {
                state.deliver(peer, &line, evicted);
            }
            state.show_room_memory(&new_key, peer, evicted);
            Ok(())
        })
    }

    /// `/who`: the users in the caller's room.
    pub fn who(&self, peer: &Arc<Peer>) {
        self.with_state(|state, evicted| {
            let Some(session) = state.sessions.get(&peer.id) else {
                return;
            };
            let names = state.member_names(&session.room);
            let head = format!(
                "{} {} in {}: ",
                names.len(),
                plural(names.len(), "user", "users"),
                state.room_display(&session.room)
            );
            for line in list_lines(&head, &names) {
                state.deliver(peer, &line, evicted);
            }
        });
    }

    /// `/rooms`: every room with its user count.
    pub fn rooms(&self, peer: &Arc<Peer>) {
        self.with_state(|state, evicted| {
            let mut rooms: Vec<&Room> = state.rooms.values().collect();
            rooms.sort_unstable_by_key(|room| key(&room.name));
            let entries: Vec<String> = rooms
                .iter()
                .map(|room| {
                    let users = room.members.len() + room.remote.len();
                    format!("{} ({users})", room.name)
                })
                .collect();
            let head = format!(
                "{} {}: ",
                entries.len(),
                plural(entries.len(), "room", "rooms")
            );
            let mut lines = list_lines(&head, &entries);
            // Topics follow, indented as the list's own continuation lines.
            lines.extend(rooms.iter().filter_map(|room| {
                let topic = room.log.topic.as_ref()?;
                Some(wire::notice(&format!("  {}: {topic}", room.name)))
            }));
            for line in lines {
                state.deliver(peer, &line, evicted);
            }
        });
    }

    /// Logs the user out; its room gets `* NAME left` plus the reason, if any. `farewell` goes
    /// to the user first (the `/quit` goodbye). Returns the name, or None if not logged in.
    pub fn leave(
        &self,
        peer: &Arc<Peer>,
        reason: Option<&str>,
        farewell: Option<&str>,
    ) -> Option<String> {
        self.with_state(|state, evicted| {
            if !state.sessions.contains_key(&peer.id) {
                return None;
            }
            if let Some(farewell) = farewell {
                state.deliver(peer, farewell, evicted);
            }
            state.depart(peer.id, reason, evicted)
        })
    }

    /// Sends a line to one peer (replies, errors). Evicts it if its queue is full.
    pub fn reply(&self, peer: &Arc<Peer>, line: &str) {
        if peer.send_line(line).is_err() {
            self.with_state(|_, evicted| evicted.push(Arc::clone(peer)));
        }
    }

    /// Waits (a few seconds at most) until the disk has what was queued for it.
    pub fn flush_store(&self) {
        let store = self.state.lock().store.clone();
        if let Some(Err(e)) = store.map(|store| store.flush()) {
            tracing::error!(error = %e, "the last rows may not be on disk");
        }
    }

    /// Refuses new connections and queues `line` to every connection. Returns them all.
    pub fn shut_down(&self, line: &str) -> Vec<Arc<Peer>> {
        let mut state = self.state.lock();
        state.shutting_down = true;
        let peers: Vec<Arc<Peer>> = state.connections.values().cloned().collect();
        drop(state);
        for peer in &peers {
            let _ = peer.send_line(line);
            peer.send_close(CloseReason::GoingAway);
        }
        peers
    }

    /// Gauges and counters for `/metrics`.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.state.lock();
        Snapshot {
            users: state.sessions.len() as u64,
            connections: state.connections.len() as u64,
            rooms: state.rooms.len() as u64,
            messages_relayed: state.stats.messages_relayed.get(),
            lines_delivered: state.stats.lines_delivered.get(),
            dropped_slow: state.stats.dropped_slow.get(),
            logins: state.stats.logins.get(),
            logins_refused: state.stats.logins_refused.get(),
            connections_total: state.stats.connections_total.get(),
            store_dropped: state.store.as_ref().map_or(0, |store| store.dropped()),
            cluster_up: u64::from(state.bus.as_ref().is_some_and(|bus| bus.is_ready())),
            remote_users: state.remote.len() as u64,
        }
    }
}

/// What `/metrics` reports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub users: u64,
    pub connections: u64,
    pub rooms: u64,
    pub messages_relayed: u64,
    pub lines_delivered: u64,
    pub dropped_slow: u64,
    pub logins: u64,
    pub logins_refused: u64,
    pub connections_total: u64,
    /// Rows the disk did not take (queue full or failed writes).
    pub store_dropped: u64,
    /// In a cluster and in sync with Redis: 1.
    pub cluster_up: u64,
    /// Users of the cluster's other servers.
    pub remote_users: u64,
}
