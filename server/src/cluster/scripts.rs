//! The cluster's Redis keys and its two Lua scripts. A script runs atomically in Redis, which
//! is what makes a name claim race-free and a batch's writes land in the bus's order.

use std::sync::LazyLock;

use redis::Script;

/// The names of every key and channel, under `--cluster-prefix`. (The scripts also use
/// `PREFIX:names`, a hash of name key -> `SERVER/PEER` holding it.)
#[derive(Debug, Clone)]
pub struct Keys {
    pub prefix: String,
}

impl Keys {
    /// The pub/sub channel every server publishes its batches on and listens to.
    pub fn bus(&self) -> String {
        format!("{}:bus", self.prefix)
    }
    /// Counts batches: each published batch carries the next number.
    pub fn seq(&self) -> String {
        format!("{}:seq", self.prefix)
    }
    /// A live server's lease: it expires unless the server renews it.
    pub fn server(&self, id: &str) -> String {
        format!("{}:server:{id}", self.prefix)
    }
    /// Hash: room key -> room name as written.
    pub fn rooms(&self) -> String {
        format!("{}:rooms", self.prefix)
    }
    /// List of `SEQ JSON` history entries of a room.
    pub fn history(&self, room_key: &str) -> String {
        format!("{}:history:{room_key}", self.prefix)
    }
    pub fn topics(&self) -> String {
        format!("{}:topics", self.prefix)
    }
    pub fn accounts(&self) -> String {
        format!("{}:accounts", self.prefix)
    }
    pub fn bans(&self) -> String {
        format!("{}:bans", self.prefix)
    }
    pub fn mutes(&self) -> String {
        format!("{}:mutes", self.prefix)
    }
}

/// How long a server's lease lasts without renewal; it is renewed with every heartbeat.
pub const LEASE_MS: u64 = 10_000;

/// Claims a name for `HOLDER` (`SERVER/PEER`) unless a live server's user holds it. A holder
/// whose server's lease has expired has died: its names are free. This server's own stale
/// claims are free too (its registry knows who is logged in here).
///
/// ARGV: prefix, name key, holder, server. Returns 1 when claimed.
pub static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p, k, holder, me = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local owner = redis.call('HGET', p .. ':names', k)
if owner and owner ~= holder then
  local server = string.match(owner, '^(.*)/')
  if server ~= me and redis.call('EXISTS', p .. ':server:' .. server) == 1 then
    return 0
  end
end
redis.call('HSET', p .. ':names', k, holder)
return 1
",
    )
});

/// Releases a claim if `HOLDER` still holds it. ARGV: prefix, name key, holder.
pub static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p, k, holder = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', p .. ':names', k) == holder then
  redis.call('HDEL', p .. ':names', k)
end
return 1
",
    )
});

/// Publishes one batch with everything it writes, atomically: so a room's history in Redis is
/// in the bus's order, and a batch costs one round trip however many events it holds.
///
/// ARGV: prefix, server, history kept per room, payload, then (op, a, b) triples:
/// `H room entry` history (and the room in the rooms hash, named by its key until a `N` names it), `N room name` a room's name, `T room topic`, `R name holder` release
/// a claim, `B ip ban` / `b ip -`, `M name until` / `m name -` bans and mutes, `S ms -` renew
/// this server's lease for ms, `X - -` end it (shutdown). Returns the batch's number.
pub static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p, me, keep, payload = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local seq = redis.call('INCR', p .. ':seq')
for i = 5, #ARGV, 3 do
  local op, a, b = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'H' then
    local key = p .. ':history:' .. a
    redis.call('RPUSH', key, seq .. ' ' .. b)
    redis.call('LTRIM', key, -keep, -1)
    redis.call('HSETNX', p .. ':rooms', a, a)
  elseif op == 'N' then
    redis.call('HSETNX', p .. ':rooms', a, b)
  elseif op == 'T' then
    redis.call('HSET', p .. ':topics', a, b)
  elseif op == 'R' then
    if redis.call('HGET', p .. ':names', a) == b then
      redis.call('HDEL', p .. ':names', a)
    end
  elseif op == 'B' then
    redis.call('HSET', p .. ':bans', a, b)
  elseif op == 'b' then
    redis.call('HDEL', p .. ':bans', a)
  elseif op == 'M' then
    redis.call('HSET', p .. ':mutes', a, b)
  elseif op == 'm' then
    redis.call('HDEL', p .. ':mutes', a)
  elseif op == 'S' then
    redis.call('SET', p .. ':server:' .. me, '1', 'PX', a)
  elseif op == 'X' then
    redis.call('DEL', p .. ':server:' .. me)
  end
end
redis.call('PUBLISH', p .. ':bus', seq .. ' ' .. payload)
return seq
",
    )
});
