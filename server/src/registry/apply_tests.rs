//! The cluster's rules on one registry, with the test playing Redis: it takes the events the
//! registry queued and hands them back (or hands it another server's), as the subscriber would.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use socket2::Socket;

use super::bus::{ClusterDown, Event, Link, LinkState, NameClaims, Outbox, RosterUser};
use super::{Admission, HistorySettings, LoginError, Registry};
use crate::flusher::Flushers;
use crate::peer::{Peer, PeerId};

struct AlwaysFree;

impl NameClaims for AlwaysFree {
    fn claim(&self, _: &str, _: PeerId) -> Result<bool, ClusterDown> {
        Ok(true)
    }
    fn release(&self, _: &str, _: PeerId) {}
}

struct Cluster {
    registry: Registry,
    events: Receiver<Event>,
    link: Arc<Link>,
    flushers: Flushers,
}

struct User {
    peer: Arc<Peer>,
    lines: BufReader<UnixStream>,
}

impl User {
    /// The next line, or None if nothing comes within a moment.
    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.lines.read_line(&mut line) {
            Ok(n) if n > 0 => Some(line.trim_end().to_owned()),
            _ => None,
        }
    }

    fn expect(&mut self, want: &str) {
        assert_eq!(self.line().as_deref(), Some(want));
    }
}

const ME: &str = "me";
const OTHER: &str = "other";

impl Cluster {
    fn new() -> Self {
        let mut registry = Registry::new(
            100,
            HistorySettings {
                keep: 10,
                on_join: 0,
                outlive_rooms: false,
            },
        );
        let link = Arc::new(Link::default());
        link.set(LinkState::Ready);
        let (queue, events) = crossbeam_channel::unbounded();
        registry.join_cluster(
            Outbox::new(ME.into(), queue, Arc::clone(&link)),
            Arc::new(AlwaysFree),
        );
        let flushers = Flushers::start(1).unwrap();
        Self {
            registry,
            events,
            link,
            flushers,
        }
    }

    /// Hands back what this server queued, as Redis would.
    fn round_trip(&self) {
        let events: Vec<Event> = self.events.try_iter().collect();
        self.registry.apply_batch(ME, events);
    }

    fn user(&self, name: &str) -> User {
        let (ours, theirs) = UnixStream::pair().unwrap();
        theirs
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let id = self.registry.next_peer_id();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 1000 + id as u16));
        let peer = Arc::new(Peer::new(
            id,
            Socket::from(std::os::fd::OwnedFd::from(ours)),
            addr,
            1 << 20,
            self.flushers.for_peer(id),
            None,
        ));
        let admission = Admission {
            ip: addr.ip(),
            exempt: true,
            max_per_ip: 0,
        };
        self.registry.admit(&peer, admission).unwrap();
        // The login waits for its event to come back: play Redis meanwhile.
        std::thread::scope(|scope| {
            let login = scope.spawn(|| self.registry.login(&peer, name));
            while !login.is_finished() {
                self.round_trip();
                std::thread::sleep(Duration::from_millis(1));
            }
            login.join().unwrap().unwrap();
        });
        let mut user = User {
            peer,
            lines: BufReader::new(theirs),
        };
        let welcome = user.line().unwrap();
        assert!(
            welcome.starts_with(&format!("* welcome, {name}!")),
            "{welcome}"
        );
        user
    }
}

fn other_user(name: &str) -> Event {
    Event::Joined {
        name: name.to_owned(),
        peer: 7,
        ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
    }
}

#[test]
fn own_messages_wait_for_the_round_trip() {
    let cluster = Cluster::new();
    let mut alice = cluster.user("alice");
    let mut bob = cluster.user("bob");
    alice.expect("* bob joined");
    cluster.registry.say(alice.peer.id, "hi").unwrap();
    assert_eq!(bob.line(), None, "delivered before Redis gave it back");
    cluster.round_trip();
    bob.expect("[alice] hi");
    assert_eq!(alice.line(), None, "a sender does not get its message back");
}

#[test]
fn other_servers_users_join_talk_and_go() {
    let cluster = Cluster::new();
    let mut alice = cluster.user("alice");
    cluster
        .registry
        .apply_batch(OTHER, vec![other_user("carol")]);
    alice.expect("* carol joined");
    cluster.registry.who(&alice.peer);
    alice.expect("* 2 users in lobby: alice, carol");
    let said = Event::Said {
        name: "carol".into(),
        room: "lobby".into(),
        text: "hello".into(),
        peer: 7,
        at_ms: 0,
    };
    cluster.registry.apply_batch(OTHER, vec![said]);
    alice.expect("[carol] hello");
    assert!(cluster.registry.whisper(&alice.peer, "Carol", "psst"));
    alice.expect("[you -> carol] psst");
    assert!(matches!(
        cluster.events.try_recv(),
        Ok(Event::Private { to, .. }) if to == "carol"
    ));
    let gone = Event::Gone {
        server: OTHER.into(),
        reason: "server gone".into(),
    };
    cluster.registry.apply_batch(OTHER, vec![gone]);
    alice.expect("* carol left (server gone)");
    assert!(!cluster.registry.whisper(&alice.peer, "carol", "psst"));
}

#[test]
fn a_roster_brings_a_view_up_to_date() {
    let cluster = Cluster::new();
    let mut alice = cluster.user("alice");
    let dave = RosterUser {
        name: "dave".into(),
        room: "lobby".into(),
        ip: Ipv4Addr::LOCALHOST.into(),
    };
    let roster = |users: Vec<RosterUser>| vec![Event::Roster { users }];
    cluster
        .registry
        .apply_batch(OTHER, roster(vec![dave.clone()]));
    alice.expect("* dave joined");
    cluster.registry.apply_batch(OTHER, roster(vec![dave]));
    assert_eq!(alice.line(), None, "a known user is not announced again");
    cluster.registry.apply_batch(OTHER, roster(Vec::new()));
    alice.expect("* dave left");
}

#[test]
fn a_name_on_another_server_is_taken() {
    let cluster = Cluster::new();
    let _alice = cluster.user("alice");
    cluster
        .registry
        .apply_batch(OTHER, vec![other_user("carol")]);
    let (ours, _theirs) = UnixStream::pair().unwrap();
    let peer = Arc::new(Peer::new(
        99,
        Socket::from(std::os::fd::OwnedFd::from(ours)),
        SocketAddr::from((Ipv4Addr::LOCALHOST, 9)),
        1 << 20,
        cluster.flushers.for_peer(99),
        None,
    ));
    let admission = Admission {
        ip: Ipv4Addr::LOCALHOST.into(),
        exempt: true,
        max_per_ip: 0,
    };
    cluster.registry.admit(&peer, admission).unwrap();
    assert_eq!(
        cluster.registry.login(&peer, "CAROL"),
        Err(LoginError::Taken("CAROL".into()))
    );
    cluster.link.set(LinkState::Down);
    assert_eq!(
        cluster.registry.login(&peer, "erin"),
        Err(LoginError::ClusterDown)
    );
}

#[test]
fn while_the_cluster_is_down_this_servers_users_still_talk() {
    let cluster = Cluster::new();
    let mut alice = cluster.user("alice");
    let mut bob = cluster.user("bob");
    alice.expect("* bob joined");
    cluster
        .registry
        .apply_batch(OTHER, vec![other_user("carol")]);
    alice.expect("* carol joined");
    bob.expect("* carol joined");
    cluster.link.set(LinkState::Down);
    cluster.registry.cluster_lost();
    alice.expect("* carol left (cluster unavailable)");
    cluster.registry.say(bob.peer.id, "still here").unwrap();
    alice.expect("[bob] still here");
    assert!(
        cluster.events.try_recv().is_err(),
        "nothing queued for Redis"
    );
}

#[test]
fn a_join_moves_the_user_when_it_comes_back() {
    let cluster = Cluster::new();
    let mut alice = cluster.user("alice");
    let mut bob = cluster.user("bob");
    alice.expect("* bob joined");
    // Nobody plays Redis here: the join waits its 2 s for the move to come back, then goes on.
    cluster.registry.join(&alice.peer, "x").unwrap();
    // Said to the lobby before the move came back: alice is still there in the one order.
    let carol_says = Event::Said {
        name: "carol".into(),
        room: "lobby".into(),
        text: "before".into(),
        peer: 7,
        at_ms: 0,
    };
    cluster
        .registry
        .apply_batch(OTHER, vec![other_user("carol"), carol_says]);
    alice.expect("* carol joined");
    alice.expect("[carol] before");
    cluster.round_trip();
    bob.expect("* carol joined");
    bob.expect("[carol] before");
    bob.expect("* alice left (moved to x)");
    alice.expect("* you are now in x; 1 user here: alice");
    cluster.registry.say(alice.peer.id, "in x").unwrap();
    cluster.round_trip();
    assert_eq!(bob.line(), None, "x is not the lobby");
}
