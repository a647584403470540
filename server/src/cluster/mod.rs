//! Several chat-servers as one chat over Redis (`--cluster`, PROTOCOL.md section 15).
//!
//! Redis is both the cluster's memory and its one order:
//!
//! - **Names**: a hash of name -> `SERVER/PEER`, claimed by a Lua script, so a name is taken
//!   atomically across servers. Each server holds a lease key it renews every heartbeat; when a
//!   server dies its lease expires and its names are free again, with no one cleaning up.
//! - **The bus**: one pub/sub channel. The registry queues every change a room must see (see
//!   [`crate::registry::bus`]); the [`publisher`] sends what has queued up as one batch, one
//!   script call that also writes history, topics, bans and mutes, so a busy room costs one
//!   round trip per batch, not per message. Redis runs scripts one at a time and sends every
//!   subscriber the batches in that order, so every server, this one included, applies the same
//!   events in the same order: no server delivers its own users' messages first.
//! - **Liveness**: the [`subscriber`] notes when it last heard each server (every server sends a
//!   heartbeat every 2 s) and declares a silent one gone after 8 s: its users leave with
//!   `(server gone)`.
//! - **Outage**: when Redis cannot be reached, the outbox is marked down: new logins are refused
//!   with `! cluster unavailable, try again later`, events are applied locally (users of this
//!   server still talk to each other), and the subscriber retries every second. Back in, it
//!   re-claims its users' names, sends its roster and asks for everyone else's.

mod publisher;
mod scripts;
mod snapshot;
mod subscriber;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use redis::{Commands, Connection, RedisResult};

use crate::accounts::{Accounts, Keeper};
use crate::peer::PeerId;
use crate::registry::bus::{ClusterDown, Event, Link, LinkState, NameClaims, Outbox, ServerId};
use crate::registry::Registry;
use crate::store::AccountRow;
use scripts::Keys;

/// How long to wait for Redis to accept a connection, and for any reply.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);
/// Spare connections kept for name claims and accounts.
const POOL_SIZE: usize = 8;

pub struct Cluster {
    client: redis::Client,
    keys: Keys,
    me: ServerId,
    /// Down, syncing or ready; shared with the registry's outbox.
    link: Arc<Link>,
    queue: Sender<Event>,
    pool: Mutex<Vec<Connection>>,
    /// The publisher tells when the shutdown's last batch is out.
    flushed: Receiver<()>,
    flushed_tx: Sender<()>,
}

impl Cluster {
    /// Checks the URL and makes the registry's outbox. Nothing connects yet: see [`Cluster::start`].
    pub fn new(url: &str, prefix: &str) -> anyhow::Result<(Arc<Self>, Outbox, Receiver<Event>)> {
        let client = redis::Client::open(url).with_context(|| {
            format!("--cluster {url}: not a Redis URL (redis://HOST:PORT[/DB])")
        })?;
        let me: ServerId = new_server_id().into();
        let link = Arc::new(Link::default());
        let (queue, events) = crossbeam_channel::unbounded();
        let (flushed_tx, flushed) = crossbeam_channel::bounded(1);
        let outbox = Outbox::new(Arc::clone(&me), queue.clone(), Arc::clone(&link));
        let cluster = Arc::new(Self {
            client,
            keys: Keys {
                prefix: prefix.to_owned(),
            },
            me,
            link,
            queue,
            pool: Mutex::new(Vec::new()),
            flushed,
            flushed_tx,
        });
        Ok((cluster, outbox, events))
    }

    /// Starts the publisher and the subscriber. The subscriber connects (and keeps trying);
    /// logins are refused until it is in sync.
    pub fn start(
        self: &Arc<Self>,
        events: Receiver<Event>,
        registry: Arc<Registry>,
        accounts: Arc<Accounts>,
        history_keep: usize,
    ) -> anyhow::Result<()> {
        let publisher =
            publisher::Publisher::new(Arc::clone(self), Arc::clone(&registry), history_keep);
        thread::Builder::new()
            .name("cluster-out".into())
            .spawn(move || publisher.run(&events))
            .context("cannot start the cluster's publisher")?;
        let cluster = Arc::clone(self);
        thread::Builder::new()
            .name("cluster-in".into())
            .spawn(move || subscriber::run(&cluster, &registry, &accounts))
            .context("cannot start the cluster's subscriber")?;
        tracing::info!(server = %self.me, prefix = %self.keys.prefix, "cluster: starting");
        Ok(())
    }

    /// Waits up to `wait` for the first sync, so a server that says it is listening takes
    /// logins at once; a Redis that is down does not hold the start up for longer.
    pub fn wait_ready(&self, wait: Duration) -> bool {
        let deadline = std::time::Instant::now() + wait;
        while self.link.get() != LinkState::Ready {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Redis is reachable: events go through it.
    pub fn is_up(&self) -> bool {
        self.link.get() != LinkState::Down
    }

    fn set_link(&self, state: LinkState) {
        self.link.set(state);
    }

    /// The last words of a server that shuts down: its users leave everywhere as
    /// `(server shutting down)` and its lease ends, freeing their names. Waits up to `wait`.
    pub fn shut_down(&self, wait: Duration) {
        if !self.is_up() {
            return;
        }
        let gone = Event::Gone {
            server: self.me.to_string(),
            reason: "server shutting down".to_owned(),
        };
        if self.queue.send(gone).is_ok() && self.flushed.recv_timeout(wait).is_err() {
            tracing::warn!("cluster: the shutdown notice may not have reached Redis");
        }
    }

    fn connect(&self) -> RedisResult<Connection> {
        let conn = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(REPLY_TIMEOUT))?;
        conn.set_write_timeout(Some(REPLY_TIMEOUT))?;
        Ok(conn)
    }

    /// Runs `f` on a pooled connection; a connection that failed is not put back. A pooled
    /// connection can be left over from before a Redis restart: if it fails on the way, `f`
    /// gets one more try on a fresh connection.
    fn with_conn<T>(&self, mut f: impl FnMut(&mut Connection) -> RedisResult<T>) -> RedisResult<T> {
        let pooled = self.pool.lock().pop();
        let (mut conn, fresh) = match pooled {
            Some(conn) => (conn, false),
            None => (self.connect()?, true),
        };
        let mut result = f(&mut conn);
        if !fresh
            && result
                .as_ref()
                .is_err_and(|e| e.is_io_error() || e.is_connection_dropped())
        {
            conn = self.connect()?;
            result = f(&mut conn);
        }
        if result.is_ok() {
            let mut pool = self.pool.lock();
            if pool.len() < POOL_SIZE {
                pool.push(conn);
            }
        }
        result
    }

    /// Drops the pooled connections (after Redis came back: they are dead).
    fn empty_pool(&self) {
        self.pool.lock().clear();
    }

    fn holder(&self, peer: PeerId) -> String {
        format!("{}/{peer}", self.me)
    }

    fn claim_for(&self, conn: &mut Connection, name_key: &str, peer: PeerId) -> RedisResult<bool> {
        scripts::CLAIM
            .arg(&self.keys.prefix)
            .arg(name_key)
            .arg(self.holder(peer))
            .arg(&*self.me)
            .invoke(conn)
    }
}

impl NameClaims for Cluster {
    fn claim(&self, name_key: &str, peer: PeerId) -> Result<bool, ClusterDown> {
        self.with_conn(|conn| self.claim_for(conn, name_key, peer))
            .map_err(|e| {
                tracing::warn!(error = %e, "cluster: cannot claim a name");
                ClusterDown
            })
    }

    fn release(&self, name_key: &str, peer: PeerId) {
        let released: RedisResult<i64> = self.with_conn(|conn| {
            scripts::RELEASE
                .arg(&self.keys.prefix)
                .arg(name_key)
                .arg(self.holder(peer))
                .invoke(conn)
        });
        if let Err(e) = released {
            // The lease runs out with the server anyway; until then the name stays taken.
            tracing::warn!(error = %e, "cluster: cannot release a name");
        }
    }
}

/// Accounts live in a Redis hash, name key -> `[name, hash]`; the other servers learn of a
/// change through the bus.
impl Keeper for Cluster {
    fn save(&self, row: AccountRow, create: bool) -> anyhow::Result<bool> {
        anyhow::ensure!(self.is_up(), "{}", crate::registry::bus::CLUSTER_DOWN);
        let value = serde_json::to_string(&(&row.name, &row.phc))?;
        let accounts = self.keys.accounts();
        let saved = self.with_conn(|conn| {
            if create {
                conn.hset_nx(&accounts, &row.name_key, &value)
            } else {
                conn.hset::<_, _, _, ()>(&accounts, &row.name_key, &value)
                    .map(|()| true)
            }
        })?;
        if saved {
            let entry = Some((row.name, row.phc));
            let _ = self.queue.send(Event::Account {
                key: row.name_key,
                entry,
            });
        }
        Ok(saved)
    }

    fn delete(&self, name_key: &str) -> anyhow::Result<()> {
        anyhow::ensure!(self.is_up(), "{}", crate::registry::bus::CLUSTER_DOWN);
        let accounts = self.keys.accounts();
        self.with_conn(|conn| conn.hdel::<_, _, ()>(&accounts, name_key))?;
        let key = name_key.to_owned();
        let _ = self.queue.send(Event::Account { key, entry: None });
        Ok(())
    }
}

/// A fresh random id: a restarted server is a new server.
fn new_server_id() -> String {
    use password_hash::rand_core::{OsRng, RngCore};
    format!("{:016x}", OsRng.next_u64())
}
