//! The server's own client to osqueryd's manager socket: registration and
//! deregistration only. Every read and write is bounded by a timeout, and
//! replies are decoded with [`client_limits`], so a hung or hostile peer can
//! neither hang nor exhaust the process.

use crate::_osquery as osquery;
use std::io::{Error, ErrorKind};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::transport::{TBufferedReadTransport, TBufferedWriteTransport};
use thrift::TConfiguration;

/// Limits for replies read from osqueryd. Registration replies are tiny; an
/// embedding program that reads large `query()` results uses its own client
/// with its own limits.
pub fn client_limits() -> TConfiguration {
    // Sizes well under these are all osqueryd sends to this client; the
    // builder only fails when the frame size exceeds the message size.
    TConfiguration::builder()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
        .max_string_size(Some(16 << 20))
        .max_container_size(Some(1 << 16))
        .build()
        .unwrap_or_default()
}

type Inner = osquery::ExtensionManagerSyncClient<
    TBinaryInputProtocol<TBufferedReadTransport<UnixStream>>,
    TBinaryOutputProtocol<TBufferedWriteTransport<UnixStream>>,
>;

pub struct Client {
    client: Inner,
}

impl Client {
    /// Connects to `socket_path`; every later read and write on the
    /// connection is bounded by `timeout` (zero is refused: the OS would read
    /// it as "no timeout").
    pub fn connect(socket_path: &Path, timeout: Duration) -> Result<Self, Error> {
        if timeout.is_zero() {
            return Err(Error::new(ErrorKind::InvalidInput, "zero client timeout"));
        }
        let stream = UnixStream::connect(socket_path)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let reader = stream.try_clone()?;
        // osqueryd's stack: buffered transport, binary protocol writing the
        // strict header and reading either form.
        let input = TBinaryInputProtocol::with_config(
            TBufferedReadTransport::new(reader),
            false,
            client_limits(),
        );
        let output = TBinaryOutputProtocol::new(TBufferedWriteTransport::new(stream), true);
        Ok(Client {
            client: osquery::ExtensionManagerSyncClient::new(input, output),
        })
    }

    pub fn register_extension(
        &mut self,
        info: osquery::InternalExtensionInfo,
        registry: osquery::ExtensionRegistry,
    ) -> thrift::Result<osquery::ExtensionStatus> {
        osquery::TExtensionManagerSyncClient::register_extension(&mut self.client, info, registry)
    }

    pub fn deregister_extension(
        &mut self,
        uuid: osquery::ExtensionRouteUUID,
    ) -> thrift::Result<osquery::ExtensionStatus> {
        osquery::TExtensionManagerSyncClient::deregister_extension(&mut self.client, uuid)
    }
}
