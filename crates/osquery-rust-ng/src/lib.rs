#![deny(unsafe_code)]
//! osquery-rust-ng, as forked into kerberos-cache-access (see HISTORY.md).

pub(crate) mod _osquery;
/// The generated Thrift types and clients of osquery's extension interface
/// (`osquery.thrift`). Public so that a program talking to osqueryd itself
/// (kerberos-cache-access's manager client and its test doubles) uses this
/// one copy instead of generating a second.
pub use _osquery::osquery as thrift;
pub(crate) mod client;
pub mod plugin;
pub(crate) mod server;
mod util;
pub mod wire;

pub use crate::client::client_limits;
pub use crate::server::{
    extension_socket, serve_bytes, server_limits, Running, Server, ServerConfig, StartError,
    StopReport, DEFAULT_MAX_REQUEST_BYTES,
};
pub use ::thrift::TConfiguration;

// Re-exports
pub type ExtensionResponse = _osquery::osquery::ExtensionResponse;
pub type ExtensionPluginRequest = _osquery::osquery::ExtensionPluginRequest;
pub type ExtensionPluginResponse = _osquery::osquery::ExtensionPluginResponse;
pub type ExtensionStatus = _osquery::osquery::ExtensionStatus;

///
/// Expose all structures required in virtually any osquery extension
///
/// ```
/// use osquery_rust_ng::prelude::*;
/// ```
pub mod prelude {
    pub use crate::{
        ExtensionPluginRequest, ExtensionPluginResponse, ExtensionResponse, ExtensionStatus,
    };
    pub use crate::{Running, Server, ServerConfig};
}
