//! The publisher thread: drains the registry's outbox into batches, one script call each (see
//! [`super::scripts::PUBLISH`]), and sends the heartbeat that renews this server's lease.
//!
//! It blocks for the first event, then takes whatever else has queued meanwhile: an idle
//! server sends each event at once, a busy one sends hundreds per round trip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_common::{key, wire};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use redis::{Connection, RedisResult};
use serde::Serialize;

use super::scripts::{self, LEASE_MS};
use super::Cluster;
use crate::registry::bus::{Event, LinkState};
use crate::registry::Registry;

/// How often a server says it is alive.
pub const BEAT_EVERY: Duration = Duration::from_secs(2);
/// Events per batch, at most.
const MAX_BATCH: usize = 1024;

pub struct Publisher {
    cluster: Arc<Cluster>,
    registry: Arc<Registry>,
    history_keep: usize,
    conn: Option<Connection>,
    last_beat: Instant,
}

/// A history entry as Redis keeps it (after the batch number).
#[derive(Serialize)]
struct HistoryEntry<'a> {
    at_ms: i64,
    line: &'a str,
}

impl Publisher {
    pub fn new(cluster: Arc<Cluster>, registry: Arc<Registry>, history_keep: usize) -> Self {
        Self {
            cluster,
            registry,
            history_keep,
            conn: None,
            last_beat: Instant::now(),
        }
    }

    pub fn run(mut self, events: &Receiver<Event>) {
        let mut batch = Vec::new();
        loop {
            let wait = BEAT_EVERY.saturating_sub(self.last_beat.elapsed());
            match events.recv_timeout(wait) {
                Ok(event) => batch.push(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < MAX_BATCH {
                match events.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            let beat = self.last_beat.elapsed() >= BEAT_EVERY;
            if beat {
                self.last_beat = Instant::now();
                if self.cluster.is_up() {
                    batch.push(Event::Beat);
                }
            }
            if !batch.is_empty() {
                self.send(std::mem::take(&mut batch));
            }
        }
    }

    /// Publishes a batch; while the cluster is down (or if publishing fails) its events are
    /// applied here, so this server's users still hear each other.
    fn send(&mut self, events: Vec<Event>) {
        let shutdown = events
            .iter()
            .any(|e| matches!(e, Event::Gone { server, .. } if **server == *self.cluster.me));
        if !self.cluster.is_up() {
            self.registry.apply_batch(&self.cluster.me, events);
            return;
        }
        // A connection left over from before a Redis restart fails once: retry on a fresh one.
        let published = self.publish(&events).or_else(|_| {
            self.conn = None;
            self.publish(&events)
        });
        match published {
            Ok(()) => {
                if shutdown {
                    let _ = self.cluster.flushed_tx.try_send(());
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cluster: cannot publish; serving this server's users alone until Redis is back");
                self.conn = None;
                self.cluster.set_link(LinkState::Down);
                self.registry.apply_batch(&self.cluster.me, events);
            }
        }
    }

    fn publish(&mut self, events: &[Event]) -> RedisResult<()> {
        let payload = serde_json::to_string(&BatchRef {
            server: &self.cluster.me,
            events,
        })
        .map_err(|e| redis::RedisError::from(std::io::Error::other(e)))?;
        let mut invocation = scripts::PUBLISH.prepare_invoke();
        invocation
            .arg(&self.cluster.keys.prefix)
            .arg(&*self.cluster.me)
            .arg(self.history_keep)
            .arg(payload);
        for op in self.writes(events) {
            invocation.arg(op.0).arg(op.1).arg(op.2);
        }
        if self.conn.is_none() {
            self.conn = Some(self.cluster.connect()?);
        }
        let conn = self.conn.as_mut().expect("connected above");
        let _seq: u64 = invocation.invoke(conn)?;
        Ok(())
    }

    /// What a batch writes besides publishing itself: (op, a, b) for the script.
    fn writes(&self, events: &[Event]) -> Vec<(&'static str, String, String)> {
        let holder = |peer: u64| self.cluster.holder(peer);
        let mut ops = Vec::new();
        for event in events {
            match event {
                Event::Said {
                    name,
                    room,
                    text,
                    at_ms,
                    ..
                } if self.history_keep > 0 => {
                    let line = wire::message(name, text);
                    ops.push(("H", room.clone(), history_entry(*at_ms, &line)));
                }
                Event::Acted {
                    name,
                    room,
                    text,
                    at_ms,
                } if self.history_keep > 0 => {
                    let line = wire::notice(&format!("{name} {text}"));
                    ops.push(("H", room.clone(), history_entry(*at_ms, &line)));
                }
                Event::Moved { to, display, .. } => ops.push(("N", to.clone(), display.clone())),
                Event::Topic {
                    room,
                    display,
                    text,
                    ..
                } => {
                    ops.push(("N", room.clone(), display.clone()));
                    ops.push(("T", room.clone(), text.clone()));
                }
                Event::Left { name, peer, .. } => ops.push(("R", key(name), holder(*peer))),
                Event::Renamed { old, new, peer, .. } if key(old) != key(new) => {
                    ops.push(("R", key(old), holder(*peer)));
                }
                Event::Ban {
                    ip,
                    name,
                    until_ms,
                    by,
                    ..
                } => {
                    let ban = serde_json::json!({ "name": name, "until_ms": until_ms, "by": by });
                    ops.push(("B", ip.to_string(), ban.to_string()));
                }
                Event::Unban { ips } => {
                    ops.extend(ips.iter().map(|ip| ("b", ip.to_string(), String::new())));
                }
                Event::Mute { name, until_ms, .. } => {
                    let until = until_ms.map_or_else(String::new, |ms| ms.to_string());
                    ops.push(("M", key(name), until));
                }
                Event::Unmute { name, .. } => ops.push(("m", key(name), String::new())),
                Event::Beat => ops.push(("S", LEASE_MS.to_string(), String::new())),
                Event::Gone { server, .. } if **server == *self.cluster.me => {
                    ops.push(("X", String::new(), String::new()));
                }
                _ => {}
            }
        }
        ops
    }
}

/// [`crate::registry::bus::Batch`] without owning its events.
#[derive(Serialize)]
struct BatchRef<'a> {
    #[serde(rename = "s")]
    server: &'a str,
    #[serde(rename = "e")]
    events: &'a [Event],
}

fn history_entry(at_ms: i64, line: &str) -> String {
    serde_json::to_string(&HistoryEntry { at_ms, line }).unwrap_or_default()
}
