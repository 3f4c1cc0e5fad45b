//! kerberos_cache_access: an osquery extension that records process
//! executions touching Kerberos credential caches (`kcc copy_cred_cache` and
//! friends) and serves them as the `kerberos_cache_access` table.
//!
//! Data flows one way: [`sources`] produce normalized [`event::ExecEvent`]s,
//! the [`engine`] runs them through the [`classify`]er into frozen
//! [`row::Row`]s kept in the [`store`], and the [`table`]s serve them to
//! osqueryd (through the [`osquery`] binding) or to `--standalone`.

#![warn(missing_docs, unreachable_pub)]

mod ccname;
pub mod classify;
pub mod cli;
pub mod constraints;
pub mod engine;
pub mod event;
mod exec_path;
pub(crate) mod hash;
mod identity;
mod indicator;
pub mod journal;
mod journaling;
pub mod osquery;
#[cfg(target_os = "linux")]
mod procfs;
pub mod row;
pub mod schema;
pub mod sources;
pub mod standalone;
mod state;
pub mod status;
pub mod store;
pub(crate) mod sys;
pub mod table;
mod text;
mod ticket_replay;
mod ticket_tools;
pub mod users;
