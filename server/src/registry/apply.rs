//! Applying the cluster's events (see [`super::bus`]) in the order Redis hands them out: what
//! every server does for a room, on its own users, when an event comes back.
//!
//! `origin` is the server that sent the event. Its own events find their session by peer id;
//! other servers' users are kept in [`State::remote`] with the room they are in, so `/who`,
//! `/rooms`, `/msg` and a room's existence see the whole cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_common::{key, wire};

use super::bus::{Event, ServerId};
use super::history::now_ms;
use super::listing::{list_lines, plural, welcome_line};
use super::state::{bump, Ban, State};
use super::{Evicted, Registry, LOBBY};
use crate::peer::PeerId;

impl Registry {
    /// Applies a batch of events from `origin`, in order, under one lock.
    pub fn apply_batch(&self, origin: &str, events: Vec<Event>) {
        let origin: ServerId = origin.into();
        self.with_state(|state, evicted| {
            for event in events {
                state.apply(&origin, event, evicted);
            }
        });
        self.settled.notify_all();
    }

    /// Waits (a moment at most) until the event `id`'s connection just sent (a login, `/join`
    /// or `/nick`) has come back and been applied, so that what the user sends next is
    /// answered after it: the welcome before the reply to a `/who` sent with the name.
    pub(super) fn settle(&self, id: PeerId) {
        let deadline = Instant::now() + SETTLE_WAIT;
        let mut state = self.state.lock();
        while state.awaiting.contains(&id) {
            if self.settled.wait_until(&mut state, deadline).timed_out() {
                state.awaiting.remove(&id);
                return;
            }
        }
    }
}

/// How long a connection waits for its own event to come back from Redis.
const SETTLE_WAIT: Duration = Duration::from_secs(2);

/// The instant of a wall-clock time in Unix ms.
fn instant_at(ms: i64) -> Instant {
    let ahead = u64::try_from(ms.saturating_sub(now_ms())).unwrap_or(0);
    Instant::now() + Duration::from_millis(ahead)
}

impl State {
    fn is_me(&self, origin: &ServerId) -> bool {
        self.bus.as_ref().is_some_and(|bus| bus.me == *origin)
    }

    pub(super) fn apply(&mut self, origin: &ServerId, event: Event, evicted: &mut Evicted) {
        let mine = self.is_me(origin);
        match event {
            Event::Joined { name, peer, ip } => {
                if mine {
                    self.awaiting.remove(&peer);
                    self.joined_here(&name, peer, evicted);
                } else {
                    let joined = wire::notice(&format!("{name} joined"));
                    self.broadcast(LOBBY, &joined, None, evicted);
                    self.add_remote(origin, name, LOBBY, ip);
                }
            }
            Event::Said {
                name,
                room,
                text,
                peer,
                at_ms,
            } => {
                let line = wire::message(&name, &text);
                bump(&self.stats.messages_relayed, 1);
                self.broadcast(&room, &line, mine.then_some(peer), evicted);
                self.remember_at(&room, line, at_ms);
            }
            Event::Acted {
                name,
                room,
                text,
                at_ms,
            } => {
                let line = wire::notice(&format!("{name} {text}"));
                bump(&self.stats.messages_relayed, 1);
                self.broadcast(&room, &line, None, evicted);
                self.remember_at(&room, line, at_ms);
            }
            Event::Moved {
                name,
                from,
                to,
                display,
                peer,
            } => {
                if mine {
                    self.awaiting.remove(&peer);
                }
                self.moved(mine, &name, &from, &to, &display, peer, evicted)
            }
            Event::Renamed {
                old,
                new,
                room,
                peer,
            } => {
                let (old_key, new_key) = (key(&old), key(&new));
                if mine {
                    self.awaiting.remove(&peer);
                } else {
                    if let Some(mut user) = self.remote.remove(&old_key) {
                        user.name = new.clone();
                        if let Some(room) = self.rooms.get_mut(&user.room) {
                            room.remote.swap_remove(&old_key);
                            room.remote.insert(new_key.clone());
                        }
                        self.remote.insert(new_key.clone(), user);
                    }
                    if let Some(until) = self.mutes.remove(&old_key) {
                        self.mutes.insert(new_key, until);
                    }
                }
                let line = wire::notice(&format!("{old} is now known as {new}"));
                self.broadcast(&room, &line, None, evicted);
            }
            Event::Left {
                name,
                room,
                line,
                tell,
                ..
            } => {
                // A user already gone with its server (shutdown, or taken for dead) is not
                // announced twice.
                if !mine && !self.forget_remote(origin, &key(&name)) {
                    return;
                }
                self.broadcast(&room, &line, None, evicted);
                if let Some(op) = tell {
                    self.tell_if_elsewhere(&op, &room, &line, evicted);
                }
            }
            Event::Private { from, to, text } => {
                if let Some(peer) = self
                    .local_user(&to)
                    .and_then(|id| self.connections.get(&id))
                {
                    let peer = Arc::clone(peer);
                    self.deliver(&peer, &wire::private_received(&from, &text), evicted);
                }
            }
            Event::Topic {
                room,
                display,
                name,
                text,
            } => {
                self.room_log(&room, &display).topic = Some(text.clone());
                let line = wire::notice(&format!("{name} set the topic: {text}"));
                self.broadcast(&room, &line, None, evicted);
            }
            Event::Kick {
                name,
                told,
                announced,
                by,
            } => {
                if let Some(id) = self.local_user(&name) {
                    self.throw_out_here(id, &told, &announced, &by, evicted);
                }
            }
            Event::Ban {
                ip,
                name,
                until_ms,
                by,
                span,
            } => {
                let now = Instant::now();
                self.bans.retain(|ban| ban.ip != ip && ban.active(now));
                let until = until_ms.map(instant_at);
                let banner = by.clone();
                self.bans.push(Ban {
                    ip,
                    name,
                    until,
                    by,
                });
                let from_there: Vec<PeerId> = self
                    .conn_ips
                    .iter()
                    .filter(|&(_, &addr)| addr == ip)
                    .map(|(&id, _)| id)
                    .collect();
                for id in from_there {
                    let is_banner = self
                        .sessions
                        .get(&id)
                        .is_some_and(|s| key(&s.name) == key(&banner));
                    if is_banner {
                        continue;
                    }
                    if self.sessions.contains_key(&id) {
                        let told = format!("you were banned by {banner}{span}");
                        let announced = format!("was banned by {banner}{span}");
                        self.throw_out_here(id, &told, &announced, &banner, evicted);
                    } else if let Some(peer) = self.connections.get(&id).cloned() {
                        self.deliver(&peer, &wire::error("you are banned"), evicted);
                        self.dismissed.push(peer);
                    }
                }
            }
            Event::Unban { ips } => self.bans.retain(|ban| !ips.contains(&ban.ip)),
            Event::Mute {
                name,
                until_ms,
                announced,
                by,
            } => {
                self.mutes.insert(key(&name), until_ms.map(instant_at));
                self.announce_about(&name, &announced, &by, evicted);
            }
            Event::Unmute {
                name,
                announced,
                by,
            } => {
                self.mutes.remove(&key(&name));
                self.announce_about(&name, &announced, &by, evicted);
            }
            Event::Hello => {
                if !mine {
                    let users = self.roster();
                    self.emit(Event::Roster { users }, evicted);
                }
            }
            Event::Roster { users } => {
                if !mine {
                    self.sync_roster(origin, users, evicted);
                }
            }
            Event::Gone { server, reason } => {
                if self.is_me(&ServerId::from(server.as_str())) {
                    if self.shutting_down {
                        return;
                    }
                    // Taken for gone (a long stall): say again who is here.
                    let users = self.roster();
                    self.emit(Event::Roster { users }, evicted);
                } else {
                    let theirs: Vec<String> = self
                        .remote
                        .iter()
                        .filter(|(_, user)| *user.server == *server)
                        .map(|(name_key, _)| name_key.clone())
                        .collect();
                    for name_key in theirs {
                        self.drop_remote(&name_key, Some(&reason), evicted);
                    }
                }
            }
            Event::Account { .. } | Event::Beat => {}
        }
    }

    /// This server's own login came back: the welcome, `joined` to the lobby, its memory.
    fn joined_here(&mut self, name: &str, peer: PeerId, evicted: &mut Evicted) {
        let joined = wire::notice(&format!("{name} joined"));
        let here = self
            .connections
            .get(&peer)
            .filter(|_| self.sessions.contains_key(&peer))
            .cloned();
        let Some(peer) = here else {
            self.broadcast(LOBBY, &joined, None, evicted);
            return;
        };
        let users = self
            .rooms
            .get(LOBBY)
            .map_or(0, |room| room.members.len() + room.remote.len())
            + 1;
        let welcome = welcome_line(name, users);
        self.deliver(&peer, &welcome, evicted);
        self.broadcast(LOBBY, &joined, None, evicted);
        self.enter_room(LOBBY, &peer);
        self.show_room_memory(LOBBY, &peer, evicted);
    }

    #[allow(clippy::too_many_arguments)]
    fn moved(
        &mut self,
        mine: bool,
        name: &str,
        from: &str,
        to: &str,
        display: &str,
        peer: PeerId,
        evicted: &mut Evicted,
    ) {
        let left = wire::notice(&format!("{name} left (moved to {display})"));
        let joined = wire::notice(&format!("{name} joined"));
        if mine {
            self.leave_room(from, peer);
        } else if let Some(room) = self.rooms.get_mut(from) {
            room.remote.swap_remove(&key(name));
            self.drop_if_empty(from);
        }
        self.broadcast(from, &left, None, evicted);
        self.broadcast(to, &joined, None, evicted);
        self.open_room(to, display);
        if !mine {
            match self.remote.get_mut(&key(name)) {
                Some(user) => {
                    user.room = to.to_owned();
                    if let Some(room) = self.rooms.get_mut(to) {
                        room.remote.insert(key(name));
                    }
                }
                None => self.drop_if_empty(to),
            }
            return;
        }
        let Some(peer) = self
            .connections
            .get(&peer)
            .filter(|_| self.sessions.contains_key(&peer))
            .cloned()
        else {
            self.drop_if_empty(to);
            return;
        };
        self.enter_room(to, &peer);
        let names = self.member_names(to);
        let head = format!(
            "you are now in {}; {} {} here: ",
            self.room_display(to),
            names.len(),
            plural(names.len(), "user", "users")
        );
        for line in list_lines(&head, &names) {
            self.deliver(&peer, &line, evicted);
        }
        self.show_room_memory(to, &peer, evicted);
    }

    /// A user of this server, by name (any case).
    fn local_user(&self, name: &str) -> Option<PeerId> {
        let id = *self.names.get(&key(name))?;
        self.sessions.contains_key(&id).then_some(id)
    }

    /// Throws a user of this server out (kick, ban); its room hears it through a `Left`.
    fn throw_out_here(
        &mut self,
        id: PeerId,
        told: &str,
        announced: &str,
        by: &str,
        evicted: &mut Evicted,
    ) {
        if let Some(peer) = self.connections.get(&id).cloned() {
            self.deliver(&peer, &wire::error(told), evicted);
            self.dismissed.push(peer);
        }
        let Some(session) = self.end_session(id) else {
            return;
        };
        let line = wire::notice(&format!("{} {announced}", session.name));
        let (name, room, tell) = (session.name, session.room, Some(by.to_owned()));
        self.emit(
            Event::Left {
                name,
                room,
                line,
                tell,
                peer: id,
            },
            evicted,
        );
    }

    /// `* TEXT` about a user to its room, and to the operator `by` if it is elsewhere.
    fn announce_about(&mut self, name: &str, text: &str, by: &str, evicted: &mut Evicted) {
        let room = match self.local_user(name) {
            Some(id) => self.sessions.get(&id).map(|s| s.room.clone()),
            None => self.remote.get(&key(name)).map(|user| user.room.clone()),
        };
        let line = wire::notice(text);
        match room {
            Some(room) => {
                self.broadcast(&room, &line, None, evicted);
                self.tell_if_elsewhere(by, &room, &line, evicted);
            }
            None => self.tell_if_elsewhere(by, "", &line, evicted),
        }
    }

    /// Gives `line` to the user `name` of this server unless it is in `room`.
    fn tell_if_elsewhere(&mut self, name: &str, room: &str, line: &str, evicted: &mut Evicted) {
        let Some(id) = self.local_user(name) else {
            return;
        };
        let there = self.sessions.get(&id).is_some_and(|s| s.room == room);
        if let (false, Some(peer)) = (there, self.connections.get(&id).cloned()) {
            self.deliver(&peer, line, evicted);
        }
    }
}
