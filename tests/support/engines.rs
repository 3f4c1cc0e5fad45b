//! Engines for tests that drive a source in process: one constructor, so a
//! change to how an engine is built is made once.

use kerberos_cache_access::engine::Engine;
use kerberos_cache_access::store::StoreConfig;
use kerberos_cache_access::users::FixedUsers;
use std::sync::Arc;

/// The default store and the one user the fixtures' uid 501 names.
pub fn with_alice() -> Arc<Engine> {
    Arc::new(Engine::new(
        StoreConfig::default(),
        Box::new(FixedUsers(vec![(501, "alice".into())])),
    ))
}

/// The default store and no user names.
pub fn bare() -> Arc<Engine> {
    Arc::new(Engine::new(
        StoreConfig::default(),
        Box::new(FixedUsers::default()),
    ))
}
