//! The subscriber thread: joins the cluster, applies every batch from the bus in its order, and
//! notices servers that went silent. When Redis goes away it marks the cluster down, lets go of
//! the other servers' users, and tries again every second.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use redis::Connection;

use super::{snapshot, Cluster};
use crate::accounts::Accounts;
use crate::registry::bus::{Batch, Event};
use crate::registry::Registry;

/// A server not heard from for this long is gone (it sends a heartbeat every 2 s).
const SILENT_FOR: Duration = Duration::from_secs(8);
/// How often the subscriber wakes without messages, to check the others' heartbeats.
const TICK: Duration = Duration::from_secs(1);
/// Between attempts to reach Redis.
const RETRY: Duration = Duration::from_secs(1);

pub fn run(cluster: &Arc<Cluster>, registry: &Registry, accounts: &Accounts) {
    let mut first = true;
    let mut reported = false;
    loop {
        match listen(cluster, registry, accounts, &mut first) {
            Ok(()) => return,
            Err(e) => {
                let was_up = cluster.is_up();
                cluster.set_up(false);
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

/// One stay in the cluster: from connecting to losing Redis (an error).
fn listen(
    cluster: &Cluster,
    registry: &Registry,
    accounts: &Accounts,
    first: &mut bool,
) -> anyhow::Result<()> {
    let mut bus_conn = cluster.connect().context("connect")?;
    let mut pubsub = bus_conn.as_pubsub();
    pubsub.subscribe(cluster.keys.bus()).context("subscribe")?;
    pubsub.set_read_timeout(Some(TICK))?;
    let mut conn = cluster.connect().context("connect")?;
    let (since, loaded) = snapshot::take(&mut conn, &cluster.keys).context("snapshot")?;
    if std::mem::take(first) {
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
    cluster.set_up(true);
    registry.announce_to_cluster();
    tracing::info!(server = %cluster.me, "cluster: in sync");

    let mut heard: HashMap<String, Instant> = HashMap::new();
    loop {
        match pubsub.get_message() {
            Ok(message) => {
                let payload = message.get_payload_bytes();
                if let Some(batch) = decode(payload, since) {
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
fn decode(payload: &[u8], since: u64) -> Option<Batch> {
    let text = std::str::from_utf8(payload).ok()?;
    let (seq, json) = text.split_once(' ')?;
    if seq.parse::<u64>().ok()? <= since {
        return None;
    }
    match serde_json::from_str(json) {
        Ok(batch) => Some(batch),
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
