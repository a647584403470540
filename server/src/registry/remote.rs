//! Users of other servers, as this server knows them: added by their logins and rosters,
//! moved by their `/join`s, and dropped when they leave, their server goes, or Redis does.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use chat_common::{key, wire};

use super::bus::{RosterUser, ServerId};
use super::state::{RemoteUser, State};
use super::Evicted;

impl State {
    pub(super) fn add_remote(&mut self, origin: &ServerId, name: String, room: &str, ip: IpAddr) {
        let name_key = key(&name);
        self.forget_remote_any(&name_key);
        self.open_room(room, room);
        if let Some(room) = self.rooms.get_mut(room) {
            room.remote.insert(name_key.clone());
        }
        let (room, server) = (room.to_owned(), Arc::clone(origin));
        self.remote.insert(
            name_key,
            RemoteUser {
                name,
                room,
                server,
                ip,
            },
        );
    }

    /// Forgets a user of `origin` silently.
    pub(super) fn forget_remote(&mut self, origin: &ServerId, name_key: &str) -> bool {
        let known = self
            .remote
            .get(name_key)
            .is_some_and(|user| user.server == *origin);
        if known {
            self.forget_remote_any(name_key);
        }
        known
    }

    pub(super) fn forget_remote_any(&mut self, name_key: &str) {
        if let Some(user) = self.remote.remove(name_key) {
            if let Some(room) = self.rooms.get_mut(&user.room) {
                room.remote.swap_remove(name_key);
            }
            self.drop_if_empty(&user.room);
        }
    }

    /// A user of another server leaves this server's view: `* NAME left (REASON)`.
    pub(super) fn drop_remote(
        &mut self,
        name_key: &str,
        reason: Option<&str>,
        evicted: &mut Evicted,
    ) {
        let Some(user) = self.remote.get(name_key) else {
            return;
        };
        let line = match reason {
            Some(reason) => wire::notice(&format!("{} left ({reason})", user.name)),
            None => wire::notice(&format!("{} left", user.name)),
        };
        let room = user.room.clone();
        self.forget_remote_any(name_key);
        self.broadcast(&room, &line, None, evicted);
    }

    /// Makes this server's view of `origin`'s users its roster: new ones join, missing ones
    /// leave, moved ones move (silently: their moves were missed, not made now).
    pub(super) fn sync_roster(
        &mut self,
        origin: &ServerId,
        users: Vec<RosterUser>,
        evicted: &mut Evicted,
    ) {
        let listed: HashSet<String> = users.iter().map(|user| key(&user.name)).collect();
        let gone: Vec<String> = self
            .remote
            .iter()
            .filter(|(name_key, user)| user.server == *origin && !listed.contains(*name_key))
            .map(|(name_key, _)| name_key.clone())
            .collect();
        for name_key in gone {
            self.drop_remote(&name_key, None, evicted);
        }
        for user in users {
            let name_key = key(&user.name);
            let known = self
                .remote
                .get(&name_key)
                .filter(|known| known.server == *origin)
                .map(|known| known.room.clone());
            if known.as_deref() == Some(user.room.as_str()) {
                continue;
            }
            if known.is_none() {
                let joined = wire::notice(&format!("{} joined", user.name));
                self.broadcast(&user.room, &joined, None, evicted);
            }
            self.add_remote(origin, user.name, &user.room, user.ip);
        }
    }
}
