//! The registry's commands in a cluster (PROTOCOL.md section 15).
//!
//! Each one does at once only what concerns the caller's own session (its name, the room its
//! next lines go to) and queues an [`Event`] for the rest; what a room sees happens when the
//! event comes back from Redis (see [`super::apply`]). Names are claimed in Redis first, with a
//! local reservation held meanwhile so two logins here cannot race for one name.

use std::sync::Arc;
use std::time::Instant;

use chat_common::{key, wire};

use super::bus::{Event, NameClaims, RosterUser};
use super::history::now_ms;
use super::state::State;
use super::{LoginError, Muted, Registry};
use crate::peer::{Peer, PeerId};

impl State {
    /// Queues an event for the cluster, or applies it here at once while the cluster is down.
    pub(super) fn emit(&mut self, event: Event, evicted: &mut super::Evicted) {
        let refused = match &self.bus {
            Some(bus) => match bus.send(event) {
                Ok(()) => return,
                Err(event) => (Arc::clone(&bus.me), event),
            },
            None => return,
        };
        let (me, event) = refused;
        self.apply(&me, event, evicted);
    }

    /// The name is used here (logged in or reserved) or by a user of another server.
    pub(super) fn name_in_use(&self, name_key: &str) -> bool {
        self.names.contains_key(name_key) || self.remote.contains_key(name_key)
    }

    /// Every user of this server, for the other servers.
    pub(super) fn roster(&self) -> Vec<RosterUser> {
        self.sessions
            .iter()
            .map(|(id, session)| RosterUser {
                name: session.name.clone(),
                room: session.room.clone(),
                ip: self
                    .conn_ips
                    .get(id)
                    .copied()
                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
            })
            .collect()
    }
}

impl Registry {
    fn claims(&self) -> &dyn NameClaims {
        self.claims.as_deref().expect("called in a cluster only")
    }

    /// Reserves `name_key` here for `id`, claims it in Redis, and keeps the reservation only
    /// if the claim held.
    fn reserve_and_claim(&self, name_key: &str, name: &str, id: PeerId) -> Result<(), LoginError> {
        {
            let mut state = self.state.lock();
            if !state.bus.as_ref().is_some_and(|bus| bus.is_ready()) {
                return Err(LoginError::ClusterDown);
            }
            if state.name_in_use(name_key) {
                return Err(LoginError::Taken(name.to_owned()));
            }
            state.names.insert(name_key.to_owned(), id);
        }
        let refusal = match self.claims().claim(name_key, id) {
            Ok(true) => return Ok(()),
            Ok(false) => LoginError::Taken(name.to_owned()),
            Err(_) => LoginError::ClusterDown,
        };
        self.unreserve(name_key, id);
        Err(refusal)
    }

    fn unreserve(&self, name_key: &str, id: PeerId) {
        let mut state = self.state.lock();
        if state.names.get(name_key) == Some(&id) {
            state.names.remove(name_key);
        }
    }

    pub(super) fn cluster_login(&self, peer: &Arc<Peer>, name: &str) -> Result<String, LoginError> {
        let name_key = key(name);
        self.reserve_and_claim(&name_key, name, peer.id)?;
        let done = self.with_state(|state, evicted| {
            if !state.connections.contains_key(&peer.id) {
                return false;
            }
            state.start_session(peer.id, name);
            state.awaiting.insert(peer.id);
            let ip = state
                .conn_ips
                .get(&peer.id)
                .copied()
                .unwrap_or(peer.addr.ip());
            let (name, peer) = (name.to_owned(), peer.id);
            state.emit(Event::Joined { name, peer, ip }, evicted);
            true
        });
        if done {
            self.settle(peer.id);
            Ok(name.to_owned())
        } else {
            self.unreserve(&name_key, peer.id);
            self.claims().release(&name_key, peer.id);
            Err(LoginError::Closed)
        }
    }

    pub(super) fn cluster_say(&self, id: PeerId, text: &str, action: bool) -> Result<(), Muted> {
        self.with_state(|state, evicted| {
            let Some(session) = state.sessions.get(&id) else {
                return Ok(());
            };
            if state.muted(&session.name, Instant::now()) {
                return Err(Muted);
            }
            let (name, room, text) = (session.name.clone(), session.room.clone(), text.to_owned());
            let at_ms = now_ms();
            let event = if action {
                Event::Acted {
                    name,
                    room,
                    text,
                    at_ms,
                }
            } else {
                Event::Said {
                    name,
                    room,
                    text,
                    peer: id,
                    at_ms,
                }
            };
            state.emit(event, evicted);
            Ok(())
        })
    }

    /// `/msg` to a user of another server: `None` when there is none by that name.
    pub(super) fn cluster_whisper(&self, from: &Arc<Peer>, to_name: &str, text: &str) -> bool {
        self.with_state(|state, evicted| {
            let Some(sender) = state.sessions.get(&from.id) else {
                return true;
            };
            let Some(target) = state.remote.get(&key(to_name)) else {
                return false;
            };
            let to = target.name.clone();
            let echo = wire::private_sent(&to, text);
            let (from_name, text) = (sender.name.clone(), text.to_owned());
            state.emit(
                Event::Private {
                    from: from_name,
                    to,
                    text,
                },
                evicted,
            );
            state.deliver(from, &echo, evicted);
            true
        })
    }

    pub(super) fn cluster_rename(&self, id: PeerId, new: &str) -> Result<(), LoginError> {
        let new_key = key(new);
        // A new case of the user's own name (alice -> Alice) needs no claim.
        let own = {
            let state = self.state.lock();
            let Some(session) = state.sessions.get(&id) else {
                return Ok(());
            };
            if session.name == new {
                return Err(LoginError::Same(new.to_owned()));
            }
            state.names.get(&new_key) == Some(&id)
        };
        if !own {
            self.reserve_and_claim(&new_key, new, id)?;
        }
        self.with_state(|state, evicted| {
            let Some(session) = state.sessions.get_mut(&id) else {
                return;
            };
            let old = std::mem::replace(&mut session.name, new.to_owned());
            let room = session.room.clone();
            if key(&old) != new_key {
                state.names.remove(&key(&old));
            }
            // A mute follows the user at once; the event moves it on the other servers.
            if let Some(until) = state.mutes.remove(&key(&old)) {
                state.mutes.insert(new_key.clone(), until);
            }
            let new = new.to_owned();
            state.awaiting.insert(id);
            state.emit(
                Event::Renamed {
                    old,
                    new,
                    room,
                    peer: id,
                },
                evicted,
            );
        });
        self.settle(id);
        Ok(())
    }

    pub(super) fn cluster_join(&self, peer: &Arc<Peer>, room_name: &str) -> Result<(), String> {
        self.with_state(|state, evicted| {
            let Some(session) = state.sessions.get(&peer.id) else {
                return Ok(());
            };
            let to = key(room_name);
            if to == session.room {
                return Err(format!(
                    "you are already in {}",
                    state.room_display(&session.room)
                ));
            }
            let (name, from) = (session.name.clone(), session.room.clone());
            let display = state
                .rooms
                .get(&to)
                .map(|room| room.name.clone())
                .or_else(|| state.archived.get(&to).map(|(name, _)| name.clone()))
                .unwrap_or_else(|| room_name.to_owned());
            if let Some(session) = state.sessions.get_mut(&peer.id) {
                session.room = to.clone();
            }
            let peer = peer.id;
            state.awaiting.insert(peer);
            state.emit(
                Event::Moved {
                    name,
                    from,
                    to,
                    display,
                    peer,
                },
                evicted,
            );
            Ok(())
        })?;
        self.settle(peer.id);
        Ok(())
    }

    pub(super) fn cluster_set_topic(&self, peer: &Arc<Peer>, topic: &str) -> Result<(), String> {
        self.with_state(|state, evicted| {
            let session = state.sessions.get(&peer.id).ok_or("not logged in")?;
            let (name, room) = (session.name.clone(), session.room.clone());
            let room_name = state.room_display(&room);
            tracing::info!(peer = peer.id, %name, room = %room_name, "set the topic");
            let text = topic.to_owned();
            let display = room_name;
            state.emit(
                Event::Topic {
                    room,
                    display,
                    name,
                    text,
                },
                evicted,
            );
            Ok(())
        })
    }

    /// Every user of this server (for a roster), and their name claims.
    pub fn local_users(&self) -> Vec<(String, PeerId)> {
        let state = self.state.lock();
        state
            .sessions
            .iter()
            .map(|(&id, session)| (session.name.clone(), id))
            .collect()
    }

    /// Sends this server's roster and asks the others for theirs: after (re)joining.
    pub fn announce_to_cluster(&self) {
        self.with_state(|state, evicted| {
            let users = state.roster();
            state.emit(Event::Roster { users }, evicted);
            state.emit(Event::Hello, evicted);
        });
    }

    /// A user whose name another server's user took while this one was cut off: it goes.
    pub fn lost_name(&self, id: PeerId) {
        self.with_state(|state, evicted| {
            if let Some(peer) = state.connections.get(&id).cloned() {
                let line = wire::error("your name was taken while this server was cut off");
                state.deliver(&peer, &line, evicted);
                state.dismissed.push(peer);
            }
            // Its name is someone else's now: leave without giving back the claim.
            if let Some(session) = state.end_session(id) {
                let line = wire::notice(&format!("{} left (name lost)", session.name));
                state.broadcast(&session.room, &line, None, evicted);
            }
        });
    }

    /// Redis went away: users of other servers are out of reach until it is back.
    pub fn cluster_lost(&self) {
        self.with_state(|state, evicted| {
            let keys: Vec<String> = state.remote.keys().cloned().collect();
            for name_key in keys {
                state.drop_remote(&name_key, Some("cluster unavailable"), evicted);
            }
        });
    }
}
