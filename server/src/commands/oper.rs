//! Operators' commands (PROTOCOL.md section 14): `/oper`, then kick, ban and mute.

use std::sync::Arc;

use chat_common::{sanitize, wire};

use super::Command;
use crate::access::OperCheck;
use crate::peer::Peer;
use crate::registry::Target;
use crate::shared::Shared;

pub fn execute(shared: &Shared, peer: &Arc<Peer>, command: Command) {
    let registry = &shared.registry;
    let result = match command {
        Command::Oper(password) => {
            oper(shared, peer, password);
            Ok(())
        }
        Command::Kick { name, reason } => {
            let reason = reason.map(|r| sanitize(r).trim().to_owned());
            registry.kick(peer, name, reason.as_deref().filter(|r| !r.is_empty()))
        }
        Command::Ban { target, minutes } => match behind_trusted(shared, Target::parse(target)) {
            Some(refusal) => Err(refusal),
            None => registry.ban(peer, Target::parse(target), minutes),
        },
        Command::Unban(target) => registry.unban(peer, Target::parse(target)),
        Command::Bans => registry.list_bans(peer),
        Command::Mute { name, minutes } => registry.mute(peer, name, minutes),
        Command::Unmute(name) => registry.unmute(peer, name),
        _ => Ok(()),
    };
    if let Err(refusal) = result {
        registry.reply(peer, &wire::error(&refusal));
    }
}

/// `/oper PASSWORD`: checked on this thread, with no registry lock held (argon2 is slow).
fn oper(shared: &Shared, peer: &Arc<Peer>, password: &str) {
    let registry = &shared.registry;
    let ip = registry.address_of(peer.id).unwrap_or(peer.addr.ip());
    let name = registry.name_of(peer.id).unwrap_or_default();
    let line = match shared.access.check_operator(ip, password) {
        OperCheck::Granted => {
            registry.make_operator(peer.id);
            tracing::info!(peer = peer.id, %name, %ip, "became an operator");
            wire::notice("you are now an operator")
        }
        OperCheck::Wrong => {
            tracing::warn!(peer = peer.id, %name, %ip, "wrong operator password");
            wire::error("wrong password")
        }
        OperCheck::Wait(wait) => {
            tracing::warn!(peer = peer.id, %name, %ip, "operator password refused: too many failures");
            wire::error(&format!(
                "too many wrong passwords from your address; try again in {} s",
                wait.as_secs().max(1)
            ))
        }
        OperCheck::Disabled => wire::error("this server has no operators"),
    };
    registry.reply(peer, &line);
}

/// A ban on a trusted address (a proxy, a load balancer) would shut out everyone who comes
/// through it: refused, with what to do instead.
fn behind_trusted(shared: &Shared, target: Target) -> Option<String> {
    let (ip, whose) = match target {
        Target::Addr(ip) => (ip, String::new()),
        Target::Name(name) => {
            let ip = shared.registry.address_of_user(name)?;
            (ip, format!("{} comes through ", sanitize(name)))
        }
    };
    shared.access.is_trusted(ip).then(|| {
        format!(
            "{whose}{ip}, a trusted address (a proxy?): banning it would shut out everyone \
             behind it; use /kick, or ban the user's own address"
        )
    })
}
