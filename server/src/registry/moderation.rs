//! Operators' powers over other users (PROTOCOL.md section 14): kick, ban, mute. Every action
//! is logged with who did it to whom from which address, and announced to the room it touches.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_common::{key, wire};

use super::listing::{list_lines, plural};
use super::state::{Ban, State};
use super::{Evicted, Registry};
use crate::peer::{Peer, PeerId};
use crate::store::{BanRow, MuteRow};
use crate::transport::CloseReason;

/// The user is muted: its messages reach nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Muted;

/// What `/ban` and `/unban` name: a user or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Name(&'a str),
    Addr(IpAddr),
}

impl<'a> Target<'a> {
    pub fn parse(text: &'a str) -> Self {
        text.parse().map_or(Target::Name(text), Target::Addr)
    }
}

/// Connections to close once the lock is released.
pub(super) type Dismissed = Vec<Arc<Peer>>;

/// ` for N minutes`, or nothing for a ban or mute without an end.
pub(super) fn for_minutes(minutes: Option<f64>) -> String {
    minutes.map_or_else(String::new, |m| {
        let unit = if m == 1.0 { "minute" } else { "minutes" };
        format!(" for {m} {unit}")
    })
}

/// The end of a timed ban or mute in Unix ms, for the disk.
pub(super) fn until_ms(minutes: Option<f64>) -> Option<i64> {
    minutes.map(|m| crate::store::now_ms().saturating_add((m * 60_000.0) as i64))
}

fn until(minutes: Option<f64>) -> Option<Instant> {
    minutes.map(|m| Instant::now() + Duration::from_secs_f64(m * 60.0))
}

impl Registry {
    /// Runs an operator's action under the lock; `Err` is the `! ` text for the operator. Then
    /// closes whom the action dismissed.
    pub(super) fn as_operator(
        &self,
        op: PeerId,
        action: impl FnOnce(&mut State, &str, &mut Evicted, &mut Dismissed) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut dismissed = Vec::new();
        self.with_state(|state, evicted| {
            let op_name = match state.sessions.get(&op) {
                Some(session) if session.oper => session.name.clone(),
                _ => return Err("not an operator".to_owned()),
            };
            action(state, &op_name, evicted, &mut dismissed)
        })?;
        for peer in dismissed {
            peer.close_after_output(CloseReason::Policy);
        }
        Ok(())
    }

    /// A ban set by `/ban NAME` on a user holds its account too, wherever it logs in from.
    pub fn account_banned(&self, name: &str) -> bool {
        let state = self.state.lock();
        let now = Instant::now();
        state
            .bans
            .iter()
            .any(|ban| ban.active(now) && ban.name.as_deref().is_some_and(|n| key(n) == key(name)))
    }

    /// `/oper` succeeded: the user is an operator until it leaves.
    pub fn make_operator(&self, id: PeerId) -> Option<String> {
        let mut state = self.state.lock();
        let session = state.sessions.get_mut(&id)?;
        session.oper = true;
        Some(session.name.clone())
    }

    pub fn is_operator(&self, id: PeerId) -> bool {
        self.state.lock().sessions.get(&id).is_some_and(|s| s.oper)
    }

    /// `/kick NAME [reason]`.
    pub fn kick(&self, op: &Arc<Peer>, name: &str, reason: Option<&str>) -> Result<(), String> {
        if self.claims.is_some() {
            return self.cluster_kick(op, name, reason);
        }
        let why = reason.map_or_else(String::new, |r| format!(" ({r})"));
        self.as_operator(op.id, |state, op_name, evicted, dismissed| {
            let target = state.find_user(name)?;
            let ip = state.conn_ips.get(&target).copied();
            let kicked = state.throw_out(
                target,
                &format!("you were kicked by {op_name}{why}"),
                &format!("was kicked by {op_name}{why}"),
                op,
                evicted,
                dismissed,
            );
            tracing::info!(op = %op_name, target = %kicked, addr = ?ip, reason = reason.unwrap_or(""), "kicked");
            Ok(())
        })
    }

    /// `/ban NAME|ADDR [minutes]`: the address may not connect again, and whoever is connected
    /// from it goes.
    pub fn ban(&self, op: &Arc<Peer>, target: Target, minutes: Option<f64>) -> Result<(), String> {
        if self.claims.is_some() {
            return self.cluster_ban(op, target, minutes);
        }
        let span = for_minutes(minutes);
        self.as_operator(op.id, |state, op_name, evicted, dismissed| {
            let (ip, name) = match target {
                Target::Addr(ip) => (ip, None),
                Target::Name(name) => {
                    let id = state.find_user(name)?;
                    let ip = state.conn_ips.get(&id).copied().ok_or("no address for that user")?;
                    (ip, state.sessions.get(&id).map(|s| s.name.clone()))
                }
            };
            state.bans.retain(|ban| ban.ip != ip && ban.active(Instant::now()));
            state.bans.push(Ban {
                ip,
                name: name.clone(),
                until: until(minutes),
                by: op_name.to_owned(),
            });
            if let Some(store) = &state.store {
                store.save_ban(BanRow {
                    ip,
                    name: name.clone(),
                    until_ms: until_ms(minutes),
                    by: op_name.to_owned(),
                });
            }
            tracing::info!(op = %op_name, %ip, target = name.as_deref().unwrap_or(""), minutes = ?minutes, "banned");
            let from_there: Vec<PeerId> = state
                .conn_ips
                .iter()
                .filter(|&(&id, &addr)| addr == ip && id != op.id)
                .map(|(&id, _)| id)
                .collect();
            let mut users = 0;
            for id in from_there {
                if state.sessions.contains_key(&id) {
                    users += 1;
                    state.throw_out(
                        id,
                        &format!("you were banned by {op_name}{span}"),
                        &format!("was banned by {op_name}{span}"),
                        op,
                        evicted,
                        dismissed,
                    );
                } else if let Some(peer) = state.connections.get(&id).cloned() {
                    state.deliver(&peer, &wire::error("you are banned"), evicted);
                    dismissed.push(peer);
                }
            }
            if users == 0 {
                state.deliver(op, &wire::notice(&format!("banned {ip}{span}")), evicted);
            }
            Ok(())
        })
    }

    /// `/unban NAME|ADDR`.
    pub fn unban(&self, op: &Arc<Peer>, target: Target) -> Result<(), String> {
        if self.claims.is_some() {
            return self.cluster_unban(op, target);
        }
        self.as_operator(op.id, |state, op_name, evicted, _| {
            let lifted = state.bans_matching(target);
            if lifted.is_empty() {
                return Err("no such ban".to_owned());
            }
            state.bans.retain(|ban| !lifted.contains(&ban.ip));
            if let Some(store) = &state.store {
                for ip in &lifted {
                    store.delete_ban(*ip);
                }
            }
            let shown = match target {
                Target::Addr(ip) => ip.to_string(),
                Target::Name(name) => name.to_owned(),
            };
            tracing::info!(op = %op_name, target = %shown, "unbanned");
            state.deliver(op, &wire::notice(&format!("unbanned {shown}")), evicted);
            Ok(())
        })
    }

    /// `/bans`: every ban in force.
    pub fn list_bans(&self, op: &Arc<Peer>) -> Result<(), String> {
        self.as_operator(op.id, |state, _, evicted, _| {
            let now = Instant::now();
            state.bans.retain(|ban| ban.active(now));
            let entries: Vec<String> = state
                .bans
                .iter()
                .map(|ban| {
                    let left = ban.until.map_or_else(
                        || "until unbanned".to_owned(),
                        |until| {
                            let left = until.saturating_duration_since(now).as_secs();
                            format!("{} min left", left.div_ceil(60))
                        },
                    );
                    match &ban.name {
                        Some(name) => format!("{} ({name}, by {}, {left})", ban.ip, ban.by),
                        None => format!("{} (by {}, {left})", ban.ip, ban.by),
                    }
                })
                .collect();
            let head = format!(
                "{} {}:",
                entries.len(),
                plural(entries.len(), "ban", "bans")
            );
            for line in list_lines(&head, &entries) {
                state.deliver(op, &line, evicted);
            }
            Ok(())
        })
    }

    /// `/mute NAME [minutes]`: the user's messages and actions reach nobody.
    pub fn mute(&self, op: &Arc<Peer>, name: &str, minutes: Option<f64>) -> Result<(), String> {
        if self.claims.is_some() {
            return self.cluster_mute(op, name, minutes);
        }
        let span = for_minutes(minutes);
        self.as_operator(op.id, |state, op_name, evicted, _| {
            let id = state.find_user(name)?;
            let (target, room) = state.name_and_room(id);
            state.mutes.insert(key(&target), until(minutes));
            if let Some(store) = &state.store {
                store.save_mute(MuteRow {
                    name_key: key(&target),
                    until_ms: until_ms(minutes),
                });
            }
            tracing::info!(op = %op_name, %target, addr = ?state.conn_ips.get(&id), minutes = ?minutes, "muted");
            state.announce(&room, &format!("{target} was muted by {op_name}{span}"), op, evicted);
            Ok(())
        })
    }

    /// `/unmute NAME`.
    pub fn unmute(&self, op: &Arc<Peer>, name: &str) -> Result<(), String> {
        if self.claims.is_some() {
            return self.cluster_unmute(op, name);
        }
        self.as_operator(op.id, |state, op_name, evicted, _| {
            if state.mutes.remove(&key(name)).is_none() {
                return Err(format!("{name} is not muted"));
            }
            if let Some(store) = &state.store {
                store.delete_mute(&key(name));
            }
            tracing::info!(op = %op_name, target = %name, "unmuted");
            match state.find_user(name) {
                Ok(id) => {
                    let (target, room) = state.name_and_room(id);
                    state.announce(
                        &room,
                        &format!("{target} was unmuted by {op_name}"),
                        op,
                        evicted,
                    );
                }
                Err(_) => state.deliver(op, &wire::notice(&format!("unmuted {name}")), evicted),
            }
            Ok(())
        })
    }
}

impl State {
    /// The addresses of the bans `/unban TARGET` lifts.
    pub(super) fn bans_matching(&self, target: Target) -> Vec<IpAddr> {
        self.bans
            .iter()
            .filter(|ban| match target {
                Target::Addr(ip) => ban.ip == ip,
                Target::Name(name) => ban.name.as_deref().is_some_and(|n| key(n) == key(name)),
            })
            .map(|ban| ban.ip)
            .collect()
    }

    fn find_user(&self, name: &str) -> Result<PeerId, String> {
        self.names
            .get(&key(name))
            .copied()
            .ok_or_else(|| format!("no such user: {}", chat_common::sanitize(name)))
    }

    fn name_and_room(&self, id: PeerId) -> (String, String) {
        self.sessions
            .get(&id)
            .map(|s| (s.name.clone(), s.room.clone()))
            .unwrap_or_default()
    }

    /// `* TEXT` to a room, and to the operator too if it is elsewhere.
    fn announce(&self, room: &str, text: &str, op: &Arc<Peer>, evicted: &mut Evicted) {
        let line = wire::notice(text);
        self.broadcast(room, &line, None, evicted);
        let op_there = self.sessions.get(&op.id).is_some_and(|s| s.room == room);
        if !op_there {
            self.deliver(op, &line, evicted);
        }
    }

    /// Tells a user `! TOLD`, logs it out with `* NAME ANNOUNCED` to its room, and marks its
    /// connection for closing. Returns its name.
    fn throw_out(
        &mut self,
        id: PeerId,
        told: &str,
        announced: &str,
        op: &Arc<Peer>,
        evicted: &mut Evicted,
        dismissed: &mut Dismissed,
    ) -> String {
        if let Some(peer) = self.connections.get(&id).cloned() {
            self.deliver(&peer, &wire::error(told), evicted);
            dismissed.push(peer);
        }
        let Some(session) = self.end_session(id) else {
            return String::new();
        };
        self.announce(
            &session.room,
            &format!("{} {announced}", session.name),
            op,
            evicted,
        );
        session.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_spans() {
        assert_eq!(Target::parse("alice"), Target::Name("alice"));
        assert_eq!(
            Target::parse("10.1.2.3"),
            Target::Addr("10.1.2.3".parse().unwrap())
        );
        assert_eq!(Target::parse("::1"), Target::Addr("::1".parse().unwrap()));
        assert_eq!(for_minutes(None), "");
        assert_eq!(for_minutes(Some(1.0)), " for 1 minute");
        assert_eq!(for_minutes(Some(10.0)), " for 10 minutes");
        assert_eq!(for_minutes(Some(0.5)), " for 0.5 minutes");
    }
}
