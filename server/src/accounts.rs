//! Registered names (PROTOCOL.md section 12): argon2 hashes in memory, and on disk when there is
//! a data dir.
//!
//! Hashing is slow on purpose (about 45 ms here, 19 MiB), so it runs on the connection's own
//! thread with no lock held, and at most a few run at once: a login storm of registered users
//! then queues for the hasher instead of taking every core and all the memory, and the chat goes
//! on. An account is on disk before the user is told it is registered.

use std::collections::HashMap;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chat_common::key;
use parking_lot::{Condvar, Mutex};

use crate::store::{AccountRow, Store};

/// Where accounts are kept durably: the data dir's database, or the cluster's Redis.
pub trait Keeper: Send + Sync {
    /// Saves before returning. `Ok(false)`: `create` was asked and the name is registered
    /// already (by another server of a cluster).
    fn save(&self, row: AccountRow, create: bool) -> anyhow::Result<bool>;
    fn delete(&self, name_key: &str) -> anyhow::Result<()>;
}

impl Keeper for Store {
    fn save(&self, row: AccountRow, _create: bool) -> anyhow::Result<bool> {
        self.save_account(row)?;
        Ok(true)
    }

    fn delete(&self, name_key: &str) -> anyhow::Result<()> {
        Ok(self.delete_account(name_key)?)
    }
}

pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 128;

/// Why an account operation failed; the `! ` text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("passwords are {MIN_PASSWORD} to {MAX_PASSWORD} bytes")]
    BadLength,
    #[error("{0} is already registered")]
    Taken(String),
    #[error("{0} is not registered")]
    NotRegistered(String),
    #[error("wrong password")]
    WrongPassword,
    #[error("cannot save the account now; try again later")]
    NotSaved,
}

pub struct Accounts {
    /// Name key -> (name as registered, PHC hash string).
    known: Mutex<HashMap<String, (String, String)>>,
    hashers: Gate,
    keeper: Option<Arc<dyn Keeper>>,
}

impl Accounts {
    pub fn new(loaded: Vec<AccountRow>, keeper: Option<Arc<dyn Keeper>>) -> Self {
        let known = loaded
            .into_iter()
            .map(|row| (row.name_key, (row.name, row.phc)))
            .collect();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            known: Mutex::new(known),
            hashers: Gate::new((cores / 2).max(1)),
            keeper,
        }
    }

    /// Takes in accounts kept elsewhere: loaded from the cluster's Redis, or made, changed
    /// (`Some`: name and hash) or given back (`None`) on another server.
    pub fn learn(&self, name_key: String, entry: Option<(String, String)>) {
        let mut known = self.known.lock();
        match entry {
            Some(entry) => known.insert(name_key, entry),
            None => known.remove(&name_key),
        };
    }

    /// Every account, as kept.
    pub fn export(&self) -> Vec<AccountRow> {
        self.known
            .lock()
            .iter()
            .map(|(name_key, (name, phc))| AccountRow {
                name_key: name_key.clone(),
                name: name.clone(),
                phc: phc.clone(),
            })
            .collect()
    }

    pub fn is_registered(&self, name: &str) -> bool {
        self.known.lock().contains_key(&key(name))
    }

    /// Checks a password for a registered name. Slow: call it holding no lock.
    pub fn verify(&self, name: &str, password: &str) -> bool {
        let Some((_, phc)) = self.known.lock().get(&key(name)).cloned() else {
            return false;
        };
        let _turn = self.hashers.enter();
        PasswordHash::new(&phc)
            .is_ok_and(|hash| hasher().verify_password(password.as_bytes(), &hash).is_ok())
    }

    /// `/register`: saves (durably, with a data dir) before returning.
    pub fn register(&self, name: &str, password: &str) -> Result<(), AccountError> {
        check_length(password)?;
        if self.is_registered(name) {
            return Err(AccountError::Taken(name.to_owned()));
        }
        let phc = self.hash(password)?;
        self.save(name, phc, false)
    }

    /// `/password OLD NEW`.
    pub fn change(&self, name: &str, old: &str, new: &str) -> Result<(), AccountError> {
        check_length(new)?;
        if !self.is_registered(name) {
            return Err(AccountError::NotRegistered(name.to_owned()));
        }
        if !self.verify(name, old) {
            return Err(AccountError::WrongPassword);
        }
        let phc = self.hash(new)?;
        self.save(name, phc, true)
    }

    /// `/unregister PASSWORD`.
    pub fn unregister(&self, name: &str, password: &str) -> Result<(), AccountError> {
        if !self.is_registered(name) {
            return Err(AccountError::NotRegistered(name.to_owned()));
        }
        if !self.verify(name, password) {
            return Err(AccountError::WrongPassword);
        }
        if let Some(keeper) = &self.keeper {
            keeper.delete(&key(name)).map_err(|e| {
                tracing::error!(%name, error = %e, "cannot delete an account");
                AccountError::NotSaved
            })?;
        }
        self.known.lock().remove(&key(name));
        Ok(())
    }

    fn hash(&self, password: &str) -> Result<String, AccountError> {
        let salt = SaltString::generate(&mut password_hash::rand_core::OsRng);
        let _turn = self.hashers.enter();
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| {
                tracing::error!(error = %e, "cannot hash a password");
                AccountError::NotSaved
            })
    }

    /// Writes the account to disk first, then to memory. `replace`: the name may exist.
    fn save(&self, name: &str, phc: String, replace: bool) -> Result<(), AccountError> {
        let name_key = key(name);
        if let Some(keeper) = &self.keeper {
            let row = AccountRow {
                name_key: name_key.clone(),
                name: name.to_owned(),
                phc: phc.clone(),
            };
            let saved = keeper.save(row, !replace).map_err(|e| {
                tracing::error!(%name, error = %e, "cannot save an account");
                AccountError::NotSaved
            })?;
            if !saved {
                return Err(AccountError::Taken(name.to_owned()));
            }
        }
        let mut known = self.known.lock();
        if !replace && known.contains_key(&name_key) {
            return Err(AccountError::Taken(name.to_owned()));
        }
        known.insert(name_key, (name.to_owned(), phc));
        Ok(())
    }
}

fn check_length(password: &str) -> Result<(), AccountError> {
    if (MIN_PASSWORD..=MAX_PASSWORD).contains(&password.len()) {
        Ok(())
    } else {
        Err(AccountError::BadLength)
    }
}

/// argon2id with 19 MiB and 5 passes: about 45 ms on this project's 2-core test machine.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 5, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// At most `limit` holders at once; the others wait their turn.
struct Gate {
    limit: usize,
    inside: Mutex<usize>,
    turn: Condvar,
}

struct Turn<'a>(&'a Gate);

impl Gate {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            inside: Mutex::new(0),
            turn: Condvar::new(),
        }
    }

    fn enter(&self) -> Turn<'_> {
        let mut inside = self.inside.lock();
        while *inside >= self.limit {
            self.turn.wait(&mut inside);
        }
        *inside += 1;
        Turn(self)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        *self.0.inside.lock() -= 1;
        self.0.turn.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_verify_change_unregister() {
        let accounts = Accounts::new(Vec::new(), None);
        assert_eq!(
            accounts.register("Alice", "short"),
            Err(AccountError::BadLength)
        );
        accounts.register("Alice", "correct horse").unwrap();
        assert!(accounts.is_registered("alice"));
        assert_eq!(
            accounts.register("ALICE", "another one"),
            Err(AccountError::Taken("ALICE".into()))
        );
        assert!(accounts.verify("alice", "correct horse"));
        assert!(!accounts.verify("alice", "Correct horse"));
        assert_eq!(
            accounts.change("alice", "wrong pass", "battery staple"),
            Err(AccountError::WrongPassword)
        );
        accounts
            .change("alice", "correct horse", "battery staple")
            .unwrap();
        assert!(accounts.verify("Alice", "battery staple"));
        assert_eq!(
            accounts.unregister("alice", "correct horse"),
            Err(AccountError::WrongPassword)
        );
        accounts.unregister("alice", "battery staple").unwrap();
        assert!(!accounts.is_registered("alice"));
    }

    #[test]
    fn hashes_are_salted_argon2id() {
        let accounts = Accounts::new(Vec::new(), None);
        accounts.register("a", "password1").unwrap();
        accounts.register("b", "password1").unwrap();
        let known = accounts.known.lock();
        let (a, b) = (&known["a"].1, &known["b"].1);
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=5,p=1$"), "{a}");
        assert_ne!(a, b, "same password, different salts");
    }
}
