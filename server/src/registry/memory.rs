//! `/history` and `/topic`: reading and setting what a room remembers.

use std::sync::Arc;

use chat_common::wire;

use super::history::{topic_line, MAX_TOPIC};
use super::Registry;
use crate::peer::Peer;
use crate::store::TopicRow;

impl Registry {
    /// `/history [N]`: up to N (default 20, at most `--history`, and what fits in half of
    /// `--outbuf-limit`) of the room's last messages.
    pub fn history(&self, peer: &Arc<Peer>, n: Option<usize>) {
        self.with_state(|state, evicted| {
            let Some(session) = state.sessions.get(&peer.id) else {
                return;
            };
            let n = n.unwrap_or(20).min(state.history.keep);
            let Some(room) = state.rooms.get(&session.room) else {
                return;
            };
            // A long history must not get its own reader dropped as too slow: the reply takes
            // at most half the output bound.
            let budget = peer.outbuf_limit() / 2;
            let mut used = 0;
            let fits = room
                .log
                .history
                .iter()
                .rev()
                .take(n)
                .take_while(|entry| {
                    used += entry.line.len() + "* HH:MM \r\n".len();
                    used <= budget
                })
                .count();
            let lines: Vec<String> = room.log.last_lines(fits).collect();
            if lines.is_empty() {
                state.deliver(
                    peer,
                    &wire::notice(&format!("no history in {}", room.name)),
                    evicted,
                );
            }
            for line in lines {
                state.deliver(peer, &line, evicted);
            }
        });
    }

    /// `/topic`: shows the room's topic.
    pub fn show_topic(&self, peer: &Arc<Peer>) {
        self.with_state(|state, evicted| {
            let Some(room) = state
                .sessions
                .get(&peer.id)
                .and_then(|session| state.rooms.get(&session.room))
            else {
                return;
            };
            let line = match &room.log.topic {
                Some(topic) => topic_line(topic),
                None => wire::notice(&format!("no topic in {}", room.name)),
            };
            state.deliver(peer, &line, evicted);
        });
    }

    /// `/topic TEXT` (sanitised): the room gets `* NAME set the topic: TEXT`.
    pub fn set_topic(&self, peer: &Arc<Peer>, topic: &str) -> Result<(), String> {
        if topic.len() > MAX_TOPIC {
            return Err(format!("topic too long (max {MAX_TOPIC} bytes)"));
        }
        if self.claims.is_some() {
            return self.cluster_set_topic(peer, topic);
        }
        self.with_state(|state, evicted| {
            let session = state.sessions.get(&peer.id).ok_or("not logged in")?;
            let (name, room_key) = (session.name.clone(), session.room.clone());
            let room = state.rooms.get_mut(&room_key).ok_or("no such room")?;
            room.log.topic = Some(topic.to_owned());
            let room_name = room.name.clone();
            let line = wire::notice(&format!("{name} set the topic: {topic}"));
            state.broadcast(&room_key, &line, None, evicted);
            tracing::info!(peer = peer.id, %name, room = %room_name, "set the topic");
            if let Some(store) = &state.store {
                store.set_topic(TopicRow {
                    room_key,
                    room_name,
                    topic: topic.to_owned(),
                });
            }
            Ok(())
        })
    }
}
