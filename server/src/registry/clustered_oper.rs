//! Operators' actions in a cluster: the target may be on any server, so each action is an
//! event every server applies (bans and mutes hold everywhere; the target's own server throws
//! it out). Redis keeps bans and mutes (see the publisher).

use std::net::IpAddr;
use std::sync::Arc;

use chat_common::{key, wire};

use super::bus::Event;
use super::moderation::{for_minutes, until_ms};
use super::state::State;
use super::{Registry, Target};
use crate::peer::Peer;

impl State {
    /// A user anywhere in the cluster: its name as written, and its address.
    fn find_anywhere(&self, name: &str) -> Result<(String, IpAddr), String> {
        let name_key = key(name);
        let local = self.names.get(&name_key).and_then(|id| {
            let session = self.sessions.get(id)?;
            Some((session.name.clone(), *self.conn_ips.get(id)?))
        });
        local
            .or_else(|| {
                let user = self.remote.get(&name_key)?;
                Some((user.name.clone(), user.ip))
            })
            .ok_or_else(|| format!("no such user: {}", chat_common::sanitize(name)))
    }

    /// Someone other than `op` is logged in from `ip`, on any server.
    fn users_from(&self, ip: IpAddr, op: u64) -> bool {
        let here = self
            .conn_ips
            .iter()
            .any(|(id, &addr)| addr == ip && *id != op && self.sessions.contains_key(id));
        here || self.remote.values().any(|user| user.ip == ip)
    }
}

impl Registry {
    /// The address `name` is connected from, on any server of the cluster.
    pub fn address_of_user(&self, name: &str) -> Option<IpAddr> {
        let state = self.state.lock();
        state.find_anywhere(name).ok().map(|(_, ip)| ip)
    }

    pub(super) fn cluster_kick(
        &self,
        op: &Arc<Peer>,
        name: &str,
        reason: Option<&str>,
    ) -> Result<(), String> {
        let why = reason.map_or_else(String::new, |r| format!(" ({r})"));
        self.as_operator(op.id, |state, op_name, evicted, _| {
            let (name, ip) = state.find_anywhere(name)?;
            tracing::info!(op = %op_name, target = %name, addr = %ip, reason = reason.unwrap_or(""), "kicked");
            let told = format!("you were kicked by {op_name}{why}");
            let announced = format!("was kicked by {op_name}{why}");
            let by = op_name.to_owned();
            state.emit(Event::Kick { name, told, announced, by }, evicted);
            Ok(())
        })
    }

    pub(super) fn cluster_ban(
        &self,
        op: &Arc<Peer>,
        target: Target,
        minutes: Option<f64>,
    ) -> Result<(), String> {
        let span = for_minutes(minutes);
        self.as_operator(op.id, |state, op_name, evicted, _| {
            let (ip, name) = match target {
                Target::Addr(ip) => (ip, None),
                Target::Name(name) => {
                    let (name, ip) = state.find_anywhere(name)?;
                    (ip, Some(name))
                }
            };
            tracing::info!(op = %op_name, %ip, target = name.as_deref().unwrap_or(""), minutes = ?minutes, "banned");
            if !state.users_from(ip, op.id) {
                state.deliver(op, &wire::notice(&format!("banned {ip}{span}")), evicted);
            }
            let (until_ms, by) = (until_ms(minutes), op_name.to_owned());
            state.emit(Event::Ban { ip, name, until_ms, by, span }, evicted);
            Ok(())
        })
    }

    pub(super) fn cluster_unban(&self, op: &Arc<Peer>, target: Target) -> Result<(), String> {
        self.as_operator(op.id, |state, op_name, evicted, _| {
            let ips = state.bans_matching(target);
            if ips.is_empty() {
                return Err("no such ban".to_owned());
            }
            let shown = match target {
                Target::Addr(ip) => ip.to_string(),
                Target::Name(name) => name.to_owned(),
            };
            tracing::info!(op = %op_name, target = %shown, "unbanned");
            state.emit(Event::Unban { ips }, evicted);
            state.deliver(op, &wire::notice(&format!("unbanned {shown}")), evicted);
            Ok(())
        })
    }

    pub(super) fn cluster_mute(
        &self,
        op: &Arc<Peer>,
        name: &str,
        minutes: Option<f64>,
    ) -> Result<(), String> {
        let span = for_minutes(minutes);
        self.as_operator(op.id, |state, op_name, evicted, _| {
            let (name, ip) = state.find_anywhere(name)?;
            tracing::info!(op = %op_name, target = %name, addr = %ip, minutes = ?minutes, "muted");
            let announced = format!("{name} was muted by {op_name}{span}");
            let (until_ms, by) = (until_ms(minutes), op_name.to_owned());
            state.emit(
                Event::Mute {
                    name,
                    until_ms,
                    announced,
                    by,
                },
                evicted,
            );
            Ok(())
        })
    }

    pub(super) fn cluster_unmute(&self, op: &Arc<Peer>, name: &str) -> Result<(), String> {
        self.as_operator(op.id, |state, op_name, evicted, _| {
            if !state.mutes.contains_key(&key(name)) {
                return Err(format!("{name} is not muted"));
            }
            let name = state
                .find_anywhere(name)
                .map_or(name.to_owned(), |(n, _)| n);
            tracing::info!(op = %op_name, target = %name, "unmuted");
            let announced = format!("{name} was unmuted by {op_name}");
            let by = op_name.to_owned();
            state.emit(
                Event::Unmute {
                    name,
                    announced,
                    by,
                },
                evicted,
            );
            Ok(())
        })
    }
}
