//! uid → user name, resolved when a row is made (a later rename must not
//! change a stored row).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where the `username` column comes from: the host's users in production,
/// a fixed map in tests.
pub trait UserNames: Send + Sync {
    /// The user name of `uid`; `None` when unknown (the column is then empty).
    fn name_of(&self, uid: i64) -> Option<String>;
}

/// The host's users through sysinfo, re-read at most every few seconds when a
/// uid is unknown (a user created after start).
pub(crate) struct SystemUsers {
    inner: Mutex<(Option<sysinfo::Users>, Instant)>,
}

const MIN_RELOAD: Duration = Duration::from_secs(5);

impl SystemUsers {
    pub(crate) fn new() -> SystemUsers {
        SystemUsers {
            inner: Mutex::new((load(), Instant::now())),
        }
    }
}

impl Default for SystemUsers {
    fn default() -> Self {
        SystemUsers::new()
    }
}

fn load() -> Option<sysinfo::Users> {
    match sysinfo::Users::new_with_refreshed_list() {
        Ok(users) => Some(users),
        Err(e) => {
            log::warn!("cannot read the user list, username will be empty: {e}");
            None
        }
    }
}

fn find(users: &Option<sysinfo::Users>, uid: i64) -> Option<String> {
    users
        .as_ref()?
        .iter()
        .find(|u| i64::from(**u.id()) == uid)
        .map(|u| u.name().to_string())
}

impl UserNames for SystemUsers {
    fn name_of(&self, uid: i64) -> Option<String> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (users, loaded) = &mut *guard;
        if let Some(name) = find(users, uid) {
            return Some(name);
        }
        if loaded.elapsed() >= MIN_RELOAD {
            *users = load();
            *loaded = Instant::now();
            return find(users, uid);
        }
        None
    }
}

/// A fixed map, for tests.
#[derive(Debug, Default, Clone)]
pub struct FixedUsers(pub Vec<(i64, String)>);

impl UserNames for FixedUsers {
    fn name_of(&self, uid: i64) -> Option<String> {
        self.0
            .iter()
            .find(|(u, _)| *u == uid)
            .map(|(_, n)| n.clone())
    }
}
