//! Which addresses are trusted, where a proxied user really comes from, and the operator
//! password with its limit on failed attempts per address (PROTOCOL.md section 14).
//!
//! Password checks run on the connection's own thread and hold no lock of the registry's: an
//! argon2 verification takes tens of milliseconds and must never stall the chat.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use argon2::password_hash::PasswordHash;
use argon2::{Argon2, PasswordVerifier};
use ipnet::IpNet;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::config::Config;
use crate::registry::Admission;

/// Failed passwords an address may have within [`FAILURE_WINDOW`] before it must wait.
const MAX_FAILURES: usize = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; past it the oldest failures are forgotten first.
const MAX_TRACKED: usize = 10_000;

pub struct Access {
    /// Replaced whole by a reload (SIGHUP); connections read the one in force.
    policy: RwLock<Arc<Policy>>,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// A policy read and checked, not yet in force.
pub struct AccessPolicy(Policy);

/// What the settings say about addresses and operators.
struct Policy {
    trusted: Vec<IpNet>,
    real_ip_header: Option<String>,
    max_per_ip: u32,
    operator: Option<Secret>,
}

impl Policy {
    fn from_config(config: &Config) -> anyhow::Result<Self> {
        let operator = config
            .oper_password_file
            .as_deref()
            .map(read_secret)
            .transpose()?;
        Ok(Self {
            trusted: config.trusted_nets(),
            real_ip_header: config.web_real_ip_header.clone(),
            max_per_ip: config.max_per_ip,
            operator,
        })
    }
}

/// How the operator password is kept: an argon2 hash (PHC string), or the password itself.
enum Secret {
    Hash(String),
    Plain(String),
}

/// What `/oper PASSWORD` comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum OperCheck {
    Granted,
    Wrong,
    /// Too many failures from this address lately: try again after this long.
    Wait(Duration),
    Disabled,
}

impl Access {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            policy: RwLock::new(Arc::new(Policy::from_config(config)?)),
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Reads and checks the settings' policy (the operator password file) without putting it
    /// in force: a reload (SIGHUP) reads everything before it changes anything. Failed
    /// passwords stay counted across reloads.
    pub fn read_policy(config: &Config) -> anyhow::Result<AccessPolicy> {
        Policy::from_config(config).map(AccessPolicy)
    }

    pub fn put_in_force(&self, AccessPolicy(policy): AccessPolicy) {
        *self.policy.write() = Arc::new(policy);
    }

    fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.read())
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.policy().trusted.iter().any(|net| net.contains(&ip))
    }

    /// How a connection from `ip` counts against the limits.
    pub fn admission(&self, ip: IpAddr) -> Admission {
        let ip = canonical(ip);
        Admission {
            ip,
            exempt: self.is_trusted(ip),
            max_per_ip: self.policy().max_per_ip,
        }
    }

    /// The header a trusted proxy names the user's address in, if one is configured.
    pub fn real_ip_header(&self) -> Option<String> {
        self.policy().real_ip_header.clone()
    }

    /// The user's address behind a proxy at `peer`: the header is believed only from a trusted
    /// address, and in a list (`X-Forwarded-For: client, proxy1`) the last address that is not
    /// itself trusted is the one a trusted proxy saw.
    pub fn real_ip(&self, peer: IpAddr, header: Option<&str>) -> IpAddr {
        let (Some(header), true) = (header, self.is_trusted(peer)) else {
            return peer;
        };
        let mut found = None;
        for candidate in header.rsplit(',').map(str::trim) {
            let Some(ip) = parse_forwarded(candidate) else {
                break;
            };
            found = Some(ip);
            if !self.is_trusted(ip) {
                break;
            }
        }
        found.map_or(peer, canonical)
    }

    /// Checks an operator password from `ip`. Verifying a hash is slow on purpose: call it
    /// holding no lock.
    pub fn check_operator(&self, ip: IpAddr, password: &str) -> OperCheck {
        let policy = self.policy();
        let Some(secret) = &policy.operator else {
            return OperCheck::Disabled;
        };
        if let Some(wait) = self.must_wait(ip, Instant::now()) {
            return OperCheck::Wait(wait);
        }
        let good = match secret {
            Secret::Plain(expected) => constant_time_eq(expected.as_bytes(), password.as_bytes()),
            Secret::Hash(phc) => PasswordHash::new(phc).is_ok_and(|hash| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            }),
        };
        if good {
            OperCheck::Granted
        } else {
            self.record_failure(ip, Instant::now());
            OperCheck::Wrong
        }
    }

    /// Before checking a user's password from `ip`: how long it must wait first, if at all.
    pub fn password_wait(&self, ip: IpAddr) -> Option<Duration> {
        self.must_wait(canonical(ip), Instant::now())
    }

    /// A wrong password from `ip`: counts towards its wait.
    pub fn password_failed(&self, ip: IpAddr) {
        self.record_failure(canonical(ip), Instant::now());
    }

    fn must_wait(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut failures = self.failures.lock();
        let recent = failures.get_mut(&ip)?;
        while recent.front().is_some_and(|&t| now >= t + FAILURE_WINDOW) {
            recent.pop_front();
        }
        (recent.len() >= MAX_FAILURES)
            .then(|| recent.front().map(|&t| t + FAILURE_WINDOW - now))
            .flatten()
    }

    fn record_failure(&self, ip: IpAddr, now: Instant) {
        let mut failures = self.failures.lock();
        if failures.len() >= MAX_TRACKED && !failures.contains_key(&ip) {
            failures.retain(|_, recent| recent.back().is_some_and(|&t| now < t + FAILURE_WINDOW));
            if failures.len() >= MAX_TRACKED {
                return;
            }
        }
        let recent = failures.entry(ip).or_default();
        recent.push_back(now);
        if recent.len() > MAX_FAILURES {
            recent.pop_front();
        }
    }
}

fn read_secret(path: &Path) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--oper-password-file {}", path.display()))?;
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        bail!(
            "--oper-password-file {}: the first line is empty",
            path.display()
        );
    }
    if line.starts_with("$argon2") {
        let complete = PasswordHash::new(line)
            .map_err(|e| e.to_string())
            .and_then(|hash| match (hash.salt, hash.hash) {
                (Some(_), Some(_)) => Ok(()),
                _ => Err("no salt or no hash".to_owned()),
            });
        if let Err(e) = complete {
            bail!(
                "--oper-password-file {}: not a valid argon2 hash: {e}",
                path.display()
            );
        }
        Ok(Secret::Hash(line.to_owned()))
    } else {
        Ok(Secret::Plain(line.to_owned()))
    }
}

/// An IPv4 address seen through an IPv6 socket (`::ffff:a.b.c.d`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `[::1]:80` or `::1`.
fn parse_forwarded(text: &str) -> Option<IpAddr> {
    let text = text.trim_matches('"');
    text.parse()
        .ok()
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn access(args: &[&str]) -> Access {
        let config = Config::parse_from([&["chat-server"], args].concat());
        Access::from_config(&config).unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn loopback_is_trusted_by_default_and_trusted_replaces_it() {
        let default = access(&[]);
        assert!(default.is_trusted(ip("127.0.0.5")) && default.is_trusted(ip("::1")));
        assert!(default.is_trusted(ip("::ffff:127.0.0.1")));
        assert!(!default.is_trusted(ip("10.0.0.1")));
        let narrow = access(&["--trusted", "10.0.0.0/8", "--trusted", "192.168.1.7"]);
        assert!(narrow.is_trusted(ip("10.9.9.9")) && narrow.is_trusted(ip("192.168.1.7")));
        assert!(!narrow.is_trusted(ip("127.0.0.1")) && !narrow.is_trusted(ip("192.168.1.8")));
        let nobody = access(&["--trusted", ""]);
        assert!(!nobody.is_trusted(ip("127.0.0.1")));
    }

    #[test]
    fn the_real_ip_header_is_believed_only_from_a_trusted_proxy() {
        let a = access(&[
            "--web-real-ip-header",
            "X-Forwarded-For",
            "--trusted",
            "10.0.0.0/8",
        ]);
        let proxy = ip("10.0.0.2");
        assert_eq!(a.real_ip(proxy, Some("203.0.113.9")), ip("203.0.113.9"));
        // The last untrusted hop is the one the trusted proxy saw; a client can put anything
        // in front of it.
        assert_eq!(
            a.real_ip(proxy, Some("1.1.1.1, 203.0.113.9, 10.0.0.7")),
            ip("203.0.113.9")
        );
        assert_eq!(
            a.real_ip(proxy, Some("[2001:db8::1]:4711")),
            ip("2001:db8::1")
        );
        assert_eq!(a.real_ip(proxy, Some("garbage")), proxy);
        assert_eq!(a.real_ip(proxy, None), proxy);
        let stranger = ip("198.51.100.1");
        assert_eq!(a.real_ip(stranger, Some("203.0.113.9")), stranger);
    }

    #[test]
    fn failed_passwords_are_limited_per_address() {
        let dir = std::env::temp_dir().join(format!("chat-oper-{}", std::process::id()));
        std::fs::write(&dir, "sesame\n").unwrap();
        let a = access(&["--oper-password-file", dir.to_str().unwrap()]);
        let (bad, other) = (ip("203.0.113.1"), ip("203.0.113.2"));
        for _ in 0..MAX_FAILURES {
            assert_eq!(a.check_operator(bad, "guess"), OperCheck::Wrong);
        }
        assert!(matches!(
            a.check_operator(bad, "sesame"),
            OperCheck::Wait(_)
        ));
        assert_eq!(a.check_operator(other, "sesame"), OperCheck::Granted);
        let _ = std::fs::remove_file(dir);
        assert_eq!(
            access(&[]).check_operator(other, "sesame"),
            OperCheck::Disabled
        );
    }

    #[test]
    fn an_argon2_hash_is_verified() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let hash = Argon2::default()
            .hash_password(b"sesame", &salt)
            .unwrap()
            .to_string();
        let file = std::env::temp_dir().join(format!("chat-oper-hash-{}", std::process::id()));
        std::fs::write(&file, format!("{hash}\n")).unwrap();
        let a = access(&["--oper-password-file", file.to_str().unwrap()]);
        assert_eq!(
            a.check_operator(ip("203.0.113.3"), "sesame"),
            OperCheck::Granted
        );
        assert_eq!(
            a.check_operator(ip("203.0.113.3"), "Sesame"),
            OperCheck::Wrong
        );
        std::fs::write(&file, "$argon2id$broken\n").unwrap();
        let config = Config::parse_from([
            "chat-server",
            "--oper-password-file",
            file.to_str().unwrap(),
        ]);
        assert!(Access::from_config(&config).is_err());
        let _ = std::fs::remove_file(file);
    }
}
