//! The subscriber thread: joins the cluster, applies every batch from the bus in its order, and
//! notices servers that went silent. When Redis goes away it marks the cluster down, lets go of
//! the other servers' users, and tries again every second.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use redis::Connection;

use super::{snapshot, Cluster};
use crate::accounts::Accounts;
use crate::registry::bus::{Batch, Event, LinkState};
use crate::registry::Registry;

/// A server not heard from for this long is gone (it sends a heartbeat every 2 s).
const SILENT_FOR: Duration = Duration::from_secs(8);
/// How often the subscriber wakes without messages, to check the others' heartbeats.
const TICK: Duration = Duration::from_secs(1);
/// How long logins wait for the other servers' rosters after (re)joining.
const ROSTER_WAIT: Duration = Duration::from_secs(2);
/// Between attempts to reach Redis.
const RETRY: Duration = Duration::from_secs(1);

pub fn run(cluster: &Arc<Cluster>, registry: &Registry, accounts: &Accounts) {
    let mut seen = Seen {
        first: true,
        last_seq: 0,
    };
    let mut reported = false;
    loop {
        match listen(cluster, registry, accounts, &mut seen) {
            Ok(()) => return,
            Err(e) => {
                let was_up = cluster.is_up();
                cluster.set_link(LinkState::Down);
                if was_up {
                    tracing::error!(
                        "cluster: lost Redis ({e:#}); refusing new logins until it is back"
                    );
                    registry.cluster_lost();
                } else if !reported {
                    tracing::error!(
                        "cluster: cannot reach Redis ({e:#}); refusing new logins until it is back"
                    );
                }
                reported = true;
            }
        }
        thread::sleep(RETRY);
    }
}

/// What the subscriber remembers between stays in the cluster.
struct Seen {
    /// Nothing loaded from Redis yet.
    first: bool,
    /// The number of the last batch applied.
    last_seq: u64,
}

/// One stay in the cluster: from connecting to losing Redis (an error).
fn listen(
    cluster: &Cluster,
    registry: &Registry,
    accounts: &Accounts,
    seen: &mut Seen,
) -> anyhow::Result<()> {
    let mut bus_conn = cluster.connect().context("connect")?;
    let mut pubsub = bus_conn.as_pubsub();
    pubsub.subscribe(cluster.keys.bus()).context("subscribe")?;
    pubsub.set_read_timeout(Some(TICK))?;
    let mut conn = cluster.connect().context("connect")?;
    cluster.empty_pool();
    let (since, loaded) = snapshot::take(&mut conn, &cluster.keys).context("snapshot")?;
    if since < seen.last_seq {
        // Redis restarted without its data: give it back what this server knows.
        let mut known = registry.export();
        known.accounts = accounts.export();
        snapshot::reseed(&mut conn, &cluster.keys, &known).context("reseed")?;
        tracing::warn!(
            accounts = known.accounts.len(),
            topics = known.topics.len(),
            bans = known.bans.len(),
            mutes = known.mutes.len(),
            "cluster: Redis came back empty; wrote back what this server knows"
        );
    }
    seen.last_seq = since;
    if std::mem::take(&mut seen.first) {
        registry.load(&loaded);
        for row in loaded.accounts {
            accounts.learn(row.name_key, Some((row.name, row.phc)));
        }
        tracing::info!(
            history = loaded.history.len(),
            topics = loaded.topics.len(),
            bans = loaded.bans.len(),
            mutes = loaded.mutes.len(),
            "cluster: loaded what Redis keeps"
        );
    }
    rejoin(cluster, registry, &mut conn)?;
    // Logins wait for the other live servers' rosters (a moment), so a newcomer's welcome and
    // `/who` already count everyone.
    let mut waiting = live_servers(cluster, &mut conn)?;
    cluster.set_link(LinkState::Syncing);
    registry.announce_to_cluster();
    let ready_by = Instant::now() + ROSTER_WAIT;

    let mut heard: HashMap<String, Instant> = HashMap::new();
    loop {
        match pubsub.get_message() {
            Ok(message) => {
                let payload = message.get_payload_bytes();
                if let Some((seq, batch)) = decode(payload, since) {
                    seen.last_seq = seq;
                    if batch
                        .events
                        .iter()
                        .any(|e| matches!(e, Event::Roster { .. }))
                    {
                        waiting.remove(&batch.server);
                    }
                    take_batch(cluster, registry, accounts, batch, &mut heard);
                }
            }
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(e).context("bus"),
        }
        if !cluster.is_up() {
            anyhow::bail!("publishing failed");
        }
        let now = Instant::now();
        if cluster.link.get() == LinkState::Syncing && (waiting.is_empty() || now >= ready_by) {
            cluster.set_link(LinkState::Ready);
            if waiting.is_empty() {
                tracing::info!(server = %cluster.me, "cluster: in sync");
            } else {
                tracing::warn!(server = %cluster.me, silent = waiting.len(), "cluster: in sync, though some servers did not send their users");
            }
        }
        heard.retain(|server, last| {
            let silent = now.duration_since(*last) > SILENT_FOR;
            if silent {
                tracing::warn!(%server, "cluster: server silent for 8 s, taken for gone");
                let reason = "server gone".to_owned();
                let _ = cluster.queue.send(Event::Gone {
                    server: server.clone(),
                    reason,
                });
            }
            !silent
        });
    }
}

/// The other servers whose lease is live, by id.
fn live_servers(cluster: &Cluster, conn: &mut Connection) -> anyhow::Result<HashSet<String>> {
    let lease_key = cluster.keys.server("");
    let mut servers = HashSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{lease_key}*"))
            .arg("COUNT")
            .arg(1000)
            .query(conn)
            .context("scan")?;
        servers.extend(
            keys.iter()
                .filter_map(|key| key.strip_prefix(&lease_key))
                .filter(|id| **id != *cluster.me)
                .map(str::to_owned),
        );
        if next == 0 {
            return Ok(servers);
        }
        cursor = next;
    }
}

/// Back in the cluster: renews the lease and claims this server's users' names again (a name
/// someone else took while this server was cut off costs its user the connection).
fn rejoin(cluster: &Cluster, registry: &Registry, conn: &mut Connection) -> anyhow::Result<()> {
    redis::cmd("SET")
        .arg(cluster.keys.server(&cluster.me))
        .arg(1)
        .arg("PX")
        .arg(super::scripts::LEASE_MS)
        .query::<()>(conn)
        .context("lease")?;
    for (name, peer) in registry.local_users() {
        let claimed = cluster
            .claim_for(conn, &chat_common::key(&name), peer)
            .context("claim")?;
        if !claimed {
            tracing::warn!(%name, peer, "cluster: name taken elsewhere while cut off");
            registry.lost_name(peer);
        }
    }
    Ok(())
}

/// `SEQ JSON`, or nothing for a batch the snapshot already had or one that does not parse.
fn decode(payload: &[u8], since: u64) -> Option<(u64, Batch)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (seq, json) = text.split_once(' ')?;
    let seq = seq.parse::<u64>().ok()?;
    if seq <= since {
        return None;
    }
    match serde_json::from_str(json) {
        Ok(batch) => Some((seq, batch)),
        Err(e) => {
            tracing::warn!(error = %e, "cluster: a batch that does not parse, skipped");
            None
        }
    }
}

fn take_batch(
    cluster: &Cluster,
    registry: &Registry,
    accounts: &Accounts,
    batch: Batch,
    heard: &mut HashMap<String, Instant>,
) {
    let mine = *batch.server == *cluster.me;
    if !mine {
        heard.insert(batch.server.clone(), Instant::now());
    }
    for event in &batch.events {
        match event {
            Event::Account { key, entry } if !mine => accounts.learn(key.clone(), entry.clone()),
            Event::Gone { server, .. } => {
                heard.remove(server);
            }
            _ => {}
        }
    }
    registry.apply_batch(&batch.server, batch.events);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_the_snapshot_had_are_skipped() {
        let payload = br#"7 {"s":"a1","e":[{"t":"beat"},{"t":"hello"}]}"#;
        let (seq, batch) = decode(payload, 6).expect("a batch after the snapshot");
        assert_eq!((seq, batch.server.as_str()), (7, "a1"));
        assert_eq!(batch.events, vec![Event::Beat, Event::Hello]);
        assert!(decode(payload, 7).is_none(), "the snapshot had it");
        assert!(decode(b"8 not json", 0).is_none());
        assert!(decode(b"no number", 0).is_none());
    }
}
