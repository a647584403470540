//! Everyone's commands, and plain messages.

use std::sync::Arc;

use chat_common::{sanitize, wire};

use super::{Command, HELP, OPER_HELP};
use crate::peer::Peer;
use crate::shared::Shared;

/// Says `text` to the sender's room.
pub fn message(shared: &Shared, peer: &Arc<Peer>, text: &str) {
    let text = sanitize(text);
    let text = text.trim_end();
    if !text.trim_start().is_empty() && shared.registry.say(peer.id, text).is_err() {
        shared.registry.reply(peer, &wire::error("you are muted"));
    }
}

/// Carries out a command other than `/quit`, which ends the connection.
pub fn execute(shared: &Shared, peer: &Arc<Peer>, command: Command) {
    let registry = &shared.registry;
    let reply = |line: &str| registry.reply(peer, line);
    match command {
        Command::Quit(_) => {}
        Command::Who => registry.who(peer),
        Command::Help => {
            let oper = registry.is_operator(peer.id);
            let extra: &[&str] = if oper { OPER_HELP } else { &[] };
            for line in HELP.iter().chain(extra) {
                reply(&wire::notice(line));
            }
        }
        Command::Rooms => registry.rooms(peer),
        Command::Me(action) => {
            let action = sanitize(action);
            match action.trim() {
                "" => reply(&wire::error("usage: /me ACTION")),
                action => {
                    if registry.act(peer.id, action).is_err() {
                        reply(&wire::error("you are muted"));
                    }
                }
            }
        }
        Command::Msg { to, text } => {
            let text = sanitize(text);
            let text = text.trim();
            if text.is_empty() {
                reply(&wire::error("usage: /msg NAME TEXT"));
            } else if !registry.whisper(peer, to, text) {
                reply(&wire::error(&format!("no such user: {}", sanitize(to))));
            }
        }
        Command::Nick(new) => match registry.rename(peer.id, new) {
            Ok(()) => tracing::info!(peer = peer.id, name = %new, "renamed"),
            Err(refusal) => reply(&wire::error(&refusal.to_string())),
        },
        Command::Join(room) => match chat_common::validate_room(room) {
            Ok(room) => {
                if let Err(refusal) = registry.join(peer, room) {
                    reply(&wire::error(&refusal));
                }
            }
            Err(e) => reply(&wire::error(&format!("invalid room name: {e}"))),
        },
        Command::History(n) => registry.history(peer, n),
        Command::Topic(None) => registry.show_topic(peer),
        Command::Topic(Some(text)) => {
            let text = sanitize(text);
            if let Err(refusal) = registry.set_topic(peer, text.trim()) {
                reply(&wire::error(&refusal));
            }
        }
        Command::Register(_) | Command::Password { .. } | Command::Unregister(_) => {
            super::account::execute(shared, peer, command)
        }
        Command::Oper(_)
        | Command::Kick { .. }
        | Command::Ban { .. }
        | Command::Unban(_)
        | Command::Bans
        | Command::Mute { .. }
        | Command::Unmute(_) => super::oper::execute(shared, peer, command),
        Command::Usage(usage) => reply(&wire::error(&format!("usage: {usage}"))),
        Command::Unknown(word) => reply(&wire::error(&format!(
            "unknown command: {} (try /help)",
            sanitize(word)
        ))),
    }
}
