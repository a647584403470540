//! Who gets a connection slot: the client limit with displacement of the oldest connection that
//! has not logged in, the per-address limit, and banned addresses (PROTOCOL.md section 14).

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use chat_common::wire;

use super::state::bump;
use super::Registry;
use crate::peer::{Peer, PeerId};
use crate::transport::CloseReason;

/// Why a connection could not be admitted; each has the line the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmitError {
    Full,
    ShuttingDown,
    Banned,
    TooManyFromAddress,
}

impl AdmitError {
    /// The `! ` line's text.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Full => "server full",
            Self::ShuttingDown => "server shutting down",
            Self::Banned => "you are banned",
            Self::TooManyFromAddress => "too many connections from your address",
        }
    }
}

/// How a connection from one address is counted.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    pub ip: IpAddr,
    /// The address is trusted: no per-address limit.
    pub exempt: bool,
    /// `--max-per-ip`; 0 for none.
    pub max_per_ip: u32,
}

impl Registry {
    /// Takes a new connection in. At the client limit, the oldest connection that has not
    /// logged in makes room: it is told `! server full` and closed.
    pub fn admit(&self, peer: &Arc<Peer>, admission: Admission) -> Result<(), AdmitError> {
        let displaced = {
            let mut state = self.state.lock();
            if state.shutting_down {
                return Err(AdmitError::ShuttingDown);
            }
            if state.banned(admission.ip, Instant::now()) {
                return Err(AdmitError::Banned);
            }
            if over_address_limit(state.per_ip.get(&admission.ip).copied(), admission) {
                return Err(AdmitError::TooManyFromAddress);
            }
            let displaced = if state.connections.len() >= self.max_clients.load(Ordering::Relaxed) {
                let Some(oldest) = state.pre_login.pop_first() else {
                    return Err(AdmitError::Full);
                };
                state.uncount_ip(oldest);
                state.connections.remove(&oldest)
            } else {
                None
            };
            state.connections.insert(peer.id, Arc::clone(peer));
            state.pre_login.insert(peer.id);
            state.count_ip(peer.id, admission.ip);
            bump(&state.stats.connections_total, 1);
            displaced
        };
        if let Some(displaced) = displaced {
            tracing::info!(peer = displaced.id, addr = %displaced.addr, by = peer.id, "displaced: server full");
            displaced.dismiss(&wire::error(AdmitError::Full.reason()), CloseReason::Policy);
        }
        Ok(())
    }

    /// Counts a connection against another address: the user's, given by a trusted proxy.
    pub fn readdress(&self, id: PeerId, admission: Admission) -> Result<(), AdmitError> {
        let mut state = self.state.lock();
        if state.banned(admission.ip, Instant::now()) {
            return Err(AdmitError::Banned);
        }
        if over_address_limit(state.per_ip.get(&admission.ip).copied(), admission) {
            return Err(AdmitError::TooManyFromAddress);
        }
        state.uncount_ip(id);
        state.count_ip(id, admission.ip);
        Ok(())
    }

    /// The address a connection counts against.
    pub fn address_of(&self, id: PeerId) -> Option<IpAddr> {
        self.state.lock().conn_ips.get(&id).copied()
    }

    /// Forgets a connection. A logged-in user should have left first (see [`Registry::leave`]).
    pub fn remove_connection(&self, id: PeerId) {
        let mut state = self.state.lock();
        state.connections.remove(&id);
        state.pre_login.remove(&id);
        state.uncount_ip(id);
    }
}

fn over_address_limit(held: Option<u32>, admission: Admission) -> bool {
    !admission.exempt && admission.max_per_ip > 0 && held.unwrap_or(0) >= admission.max_per_ip
}
