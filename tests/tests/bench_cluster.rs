//! chat-bench against a cluster of real chat-servers and a real redis-server: its clients spread
//! over the servers (`--also`) get every message, in one order for all.

use chat_tests::bench::{assert_exact_fanout, json, run as bench, u};
use chat_tests::{RedisServer, Server};

fn clustered(redis: &RedisServer) -> Server {
    let url = redis.url();
    Server::start(&[
        "--cluster",
        &url,
        "--no-web",
        "--flood-rate",
        "0",
        "--history-on-join",
        "0",
    ])
}

#[test]
fn fanout_over_two_clustered_servers_is_exact_and_in_one_order() {
    let redis = RedisServer::start();
    let (a, b) = (clustered(&redis), clustered(&redis));
    let also = format!("127.0.0.1:{}", b.addr().port());
    let port = a.addr().port().to_string();
    let batches = || {
        redis
            .get("chat:seq")
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    let before = batches();
    let v = json(&bench(&[
        "fanout", "-p", &port, "--also", &also, "-n", "40", "-k", "4", "-m", "100", "--json",
    ]));
    assert_eq!(v["servers"].as_array().map(Vec::len), Some(2), "{v}");
    assert_exact_fanout(&v, 40, 4, 100);
    assert_eq!(u(&v, "orders"), 1, "one order for every receiver: {v}");
    assert_eq!(u(&v, "orders_compared"), 36, "{v}");
    // Batched: the 400 messages (and the run's logins, probes and leaves) took far fewer
    // publishes than messages; about 20 here, one a message without batching.
    let published = batches() - before;
    assert!(published < 200, "{published} batches for 400 messages");
}

#[test]
fn two_servers_that_do_not_share_a_chat_are_told_apart() {
    // The control for the test above: without a shared Redis, the same run loses exactly the
    // deliveries that would have crossed between the servers, and says so.
    let (redis_a, redis_b) = (RedisServer::start(), RedisServer::start());
    let (a, b) = (clustered(&redis_a), clustered(&redis_b));
    let also = format!("127.0.0.1:{}", b.addr().port());
    let port = a.addr().port().to_string();
    let v = json(&bench(&[
        "fanout",
        "-p",
        &port,
        "--also",
        &also,
        "-n",
        "20",
        "-k",
        "2",
        "-m",
        "20",
        "--json",
        "--drain-s",
        "1",
    ]));
    // Senders 0 and 1 are on different servers: each message reaches the 9 others on its own.
    assert_eq!(u(&v, "received"), 2 * 20 * 9, "{v}");
    assert_eq!(u(&v, "lost"), 2 * 20 * 10, "{v}");
    let notes = v["notes"].to_string();
    assert!(notes.contains("share one chat"), "{v}");
}
