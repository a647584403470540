//! Accounts' commands (PROTOCOL.md section 12) and the password checks of login and `/nick`.
//! Every password check runs here, on the connection's thread, holding no lock.

use std::sync::Arc;

use chat_common::{key, wire};

use super::Command;
use crate::accounts::AccountError;
use crate::peer::Peer;
use crate::shared::Shared;

/// Checks `password` for the registered `name`, with failures limited per address.
pub fn check_password(
    shared: &Shared,
    peer: &Arc<Peer>,
    name: &str,
    password: &str,
) -> Result<(), String> {
    let ip = shared
        .registry
        .address_of(peer.id)
        .unwrap_or(peer.addr.ip());
    if let Some(wait) = shared.access.password_wait(ip) {
        tracing::warn!(peer = peer.id, %name, %ip, "password refused: too many failures");
        return Err(format!(
            "too many wrong passwords from your address; try again in {} s",
            wait.as_secs().max(1)
        ));
    }
    if shared.accounts.verify(name, password) {
        Ok(())
    } else {
        shared.access.password_failed(ip);
        tracing::warn!(peer = peer.id, %name, %ip, "wrong password");
        Err(AccountError::WrongPassword.to_string())
    }
}

/// `/nick NEW` needs a password when NEW is registered and is not the user's own name.
pub fn needs_password_for_nick(shared: &Shared, peer: &Arc<Peer>, new: &str) -> bool {
    let own = shared.registry.name_of(peer.id).map(|name| key(&name));
    shared.accounts.is_registered(new) && own != Some(key(new))
}

/// The password line after `/nick` to a registered name.
pub fn nick_with_password(shared: &Shared, peer: &Arc<Peer>, new: &str, password: &str) {
    let registry = &shared.registry;
    if let Err(refusal) = check_password(shared, peer, new, password) {
        registry.reply(peer, &wire::error(&refusal));
        return;
    }
    match registry.rename(peer.id, new) {
        Ok(()) => tracing::info!(peer = peer.id, name = %new, "renamed to a registered name"),
        Err(refusal) => registry.reply(peer, &wire::error(&refusal.to_string())),
    }
}

pub fn execute(shared: &Shared, peer: &Arc<Peer>, command: Command) {
    let registry = &shared.registry;
    let Some(name) = registry.name_of(peer.id) else {
        return;
    };
    let accounts = &shared.accounts;
    let result = match command {
        Command::Register(password) => accounts.register(&name, password).map(|()| {
            tracing::info!(peer = peer.id, %name, "registered");
            format!("{name} is now registered")
        }),
        Command::Password { old, new } => accounts.change(&name, old, new).map(|()| {
            tracing::info!(peer = peer.id, %name, "changed the password");
            "password changed".to_owned()
        }),
        Command::Unregister(password) => accounts.unregister(&name, password).map(|()| {
            tracing::info!(peer = peer.id, %name, "unregistered");
            format!("{name} is no longer registered")
        }),
        _ => return,
    };
    let line = match result {
        Ok(text) => wire::notice(&text),
        Err(e) => wire::error(&e.to_string()),
    };
    registry.reply(peer, &line);
}
