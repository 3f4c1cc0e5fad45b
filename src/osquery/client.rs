//! A blocking Thrift client for osqueryd's extension manager socket, and for
//! an extension's own `<socket>.<uuid>` (the manager service includes the
//! extension methods, so one client serves both).
//!
//! Wire format as osqueryd uses it: Unix stream socket, buffered (unframed)
//! transport, binary protocol writing the strict version header and reading
//! either form.

use crate::osquery::error::{Error, Result};
use crate::osquery::thrift_gen::{
    ExtensionManagerSyncClient, ExtensionResponse, ExtensionStatus, InternalExtensionInfo,
    InternalOptionInfo, TExtensionManagerSyncClient, TExtensionSyncClient,
};
use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::transport::{TBufferedReadTransport, TBufferedWriteTransport};
use thrift::TConfiguration;

/// A call's status as osqueryd reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// 0 for success, anything else a refusal (osqueryd uses 1); 0 also
    /// when the reply left it out.
    pub code: i32,
    /// osqueryd's words: "OK", or why it refused (e.g. "Duplicate extension
    /// registered"); empty when left out.
    pub message: String,
    /// The route uuid the status is about: after a successful `register`,
    /// the uuid osqueryd gave the new extension (its socket is
    /// `<socket>.<uuid>`); 0 otherwise and for osqueryd itself.
    pub uuid: i64,
}

impl Status {
    /// Whether the call succeeded (code 0, as osquery's `Status::ok()`).
    pub fn is_ok(&self) -> bool {
        self.code == 0
    }
}

/// What `extensions()` reports for one registered extension.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtensionInfo {
    /// The extension's name, as `osquery_extensions.name` lists it (ours is
    /// [`EXTENSION_NAME`](crate::osquery::EXTENSION_NAME)).
    pub name: String,
    /// The extension's own version string, shown in
    /// `osquery_extensions.version`.
    pub version: String,
    /// The osquery SDK version the extension was built with; osqueryd
    /// refuses one older than it supports ("Incompatible extension SDK
    /// version"). osquery-rust-ng sends "Unknown", which passes.
    pub sdk_version: String,
    /// The oldest osquery version the extension declares it needs
    /// (`min_sdk_version` in extension.thrift); osquery-rust-ng sends
    /// "Unknown".
    pub min_sdk_version: String,
}

/// One osqueryd flag as `options()` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptionInfo {
    /// The flag's current value as osqueryd prints it, whatever
    /// `value_type` says (e.g. "7", "true").
    pub value: String,
    pub(crate) default_value: String,
    /// osqueryd's flag type name, e.g. "bool", "string", "uint64".
    pub value_type: String,
}

/// Rows as osquery's Thrift API carries them (`ExtensionPluginResponse`):
/// one map per row, column name → value, every value text.
pub type PluginRows = Vec<BTreeMap<String, String>>;

/// What an extension offers at registration: registry name ("table", ...)
/// → item name → route info (for a table: one row per column).
pub type Registry = BTreeMap<String, BTreeMap<String, PluginRows>>;

type Client = ExtensionManagerSyncClient<
    TBinaryInputProtocol<TBufferedReadTransport<UnixStream>>,
    TBinaryOutputProtocol<TBufferedWriteTransport<UnixStream>>,
>;

/// A blocking connection to one osquery Thrift socket: osqueryd's manager,
/// or an extension's `<socket>.<uuid>`. After a failed call it refuses
/// further calls ([`Error::Broken`]); connect again to retry.
pub struct ManagerClient {
    client: Client,
    path: PathBuf,
    /// Set after any failed call: the stream may hold half a reply, so
    /// later calls would read garbage.
    broken: bool,
}

impl std::fmt::Debug for ManagerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerClient")
            .field("path", &self.path)
            .field("broken", &self.broken)
            .finish()
    }
}

impl ManagerClient {
    /// Connects to a Unix socket (osqueryd's manager socket, or an
    /// extension's `<socket>.<uuid>`). Every read and write is bounded by
    /// `timeout` so a hung peer cannot hang the caller; a zero timeout is
    /// rejected because the OS would read it as "no timeout".
    pub fn connect(path: &Path, timeout: Duration) -> Result<ManagerClient> {
        if timeout.is_zero() {
            return Err(Error::ZeroTimeout {
                path: path.to_path_buf(),
            });
        }
        let stream = UnixStream::connect(path).map_err(|err| Error::Connect {
            path: path.to_path_buf(),
            err,
        })?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(|err| Error::Socket {
                what: "set timeouts on",
                path: path.to_path_buf(),
                err,
            })?;
        let reader = stream.try_clone().map_err(|err| Error::Socket {
            what: "clone the stream of",
            path: path.to_path_buf(),
            err,
        })?;
        // strict_read = false, strict_write = true: osqueryd's defaults.
        let input = TBinaryInputProtocol::with_config(
            TBufferedReadTransport::new(reader),
            false,
            client_limits(),
        );
        let output = TBinaryOutputProtocol::new(TBufferedWriteTransport::new(stream), true);
        Ok(ManagerClient {
            client: ExtensionManagerSyncClient::new(input, output),
            path: path.to_path_buf(),
            broken: false,
        })
    }

    /// The socket this client talks to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one RPC, turning Thrift errors into context-rich errors and
    /// refusing to reuse a stream that failed mid-call.
    fn rpc<T>(
        &mut self,
        what: &'static str,
        f: impl FnOnce(&mut Client) -> thrift::Result<T>,
    ) -> Result<T> {
        if self.broken {
            return Err(Error::Broken {
                call: what,
                path: self.path.clone(),
            });
        }
        f(&mut self.client).map_err(|err| {
            // Even an error reply may leave unread bytes (e.g. a reply to an
            // earlier, timed-out call), so the stream is not trusted again.
            self.broken = true;
            Error::Call {
                call: what,
                path: self.path.clone(),
                err,
            }
        })
    }

    /// Checks that the peer answers: any reply means it is alive, and the
    /// status is its own (code 0 when well). The health check's probe.
    pub fn ping(&mut self) -> Result<Status> {
        self.rpc("ping()", |c| c.ping()).map(status_from)
    }

    /// Registered extensions by uuid (osqueryd itself, uuid 0, is not listed).
    pub fn extensions(&mut self) -> Result<BTreeMap<i64, ExtensionInfo>> {
        let list = self.rpc("extensions()", |c| c.extensions())?;
        Ok(list
            .into_iter()
            .map(|(uuid, info)| (uuid, info_from(info)))
            .collect())
    }

    /// osqueryd's flags by name.
    pub fn options(&mut self) -> Result<BTreeMap<String, OptionInfo>> {
        let list = self.rpc("options()", |c| c.options())?;
        Ok(list
            .into_iter()
            .map(|(name, o)| (name, option_from(o)))
            .collect())
    }

    /// Registers an extension; on success the status carries the new uuid.
    /// A refusal (e.g. "Duplicate extension registered") is a status with a
    /// non-zero code, not an Err.
    pub fn register(&mut self, info: ExtensionInfo, registry: Registry) -> Result<Status> {
        let info = InternalExtensionInfo::new(
            info.name,
            info.version,
            info.sdk_version,
            info.min_sdk_version,
        );
        self.rpc("registerExtension()", |c| {
            c.register_extension(info, registry)
        })
        .map(status_from)
    }

    /// Removes extension `uuid` from osqueryd's registry, what an extension
    /// does when asked to stop. Like `register`, a refusal (an unknown
    /// uuid: "No extension UUID found") is a non-zero status, not an Err.
    pub fn deregister(&mut self, uuid: i64) -> Result<Status> {
        self.rpc("deregisterExtension()", |c| c.deregister_extension(uuid))
            .map(status_from)
    }

    /// Runs SQL in osqueryd; Err (with osqueryd's message) when status code != 0.
    pub fn query(&mut self, sql: &str) -> Result<PluginRows> {
        let (status, rows) = self
            .rpc("query()", |c| c.query(sql.to_owned()))
            .map(response_from)?;
        if !status.is_ok() {
            return Err(Error::Refused {
                call: "query",
                code: status.code,
                message: status.message,
            });
        }
        Ok(rows)
    }

    /// The result columns of `sql`, one `{name: TYPE}` map per column; Err
    /// (with osqueryd's message) when status code != 0.
    pub fn query_columns(&mut self, sql: &str) -> Result<PluginRows> {
        let (status, rows) = self
            .rpc("getQueryColumns()", |c| c.get_query_columns(sql.to_owned()))
            .map(response_from)?;
        if !status.is_ok() {
            return Err(Error::Refused {
                call: "getQueryColumns",
                code: status.code,
                message: status.message,
            });
        }
        Ok(rows)
    }

    /// Calls a plugin (e.g. an extension's table). Returns the status and rows as they came.
    pub fn call(
        &mut self,
        registry: &str,
        item: &str,
        request: BTreeMap<String, String>,
    ) -> Result<(Status, PluginRows)> {
        self.rpc("call()", |c| {
            c.call(registry.to_owned(), item.to_owned(), request)
        })
        .map(response_from)
    }

    /// Asks the peer to shut down (what osqueryd sends an extension when it stops).
    pub fn shutdown(&mut self) -> Result<()> {
        self.rpc("shutdown()", |c| c.shutdown())
    }
}

/// Limits for replies this client reads. Larger than the extension server's
/// (osquery_rust_ng::server_limits) because `query()` returns whole tables,
/// e.g. `es_process_events`: osqueryd's own Thrift stack stops at 100 MB per
/// message, so that is the ceiling for a message and a string; a list, set
/// or map may hold up to 2^22 items (with at least a byte per item, the
/// message ceiling bounds it anyway). Lengths are checked against these
/// before anything is allocated; a negative one is an error.
pub(crate) fn client_limits() -> TConfiguration {
    TConfiguration::builder()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
        .max_string_size(Some(MAX_MESSAGE_BYTES))
        .max_container_size(Some(MAX_ITEMS))
        .max_recursion_depth(Some(16))
        .build()
        .unwrap_or_default()
}

/// Largest reply message, and largest string in it.
pub(crate) const MAX_MESSAGE_BYTES: usize = 100 << 20;
/// Largest list, set or map in a reply.
pub(crate) const MAX_ITEMS: usize = 1 << 22;

// Thrift decodes absent optional fields as None; they mean the defaults.

fn status_from(s: ExtensionStatus) -> Status {
    Status {
        code: s.code.unwrap_or_default(),
        message: s.message.unwrap_or_default(),
        uuid: s.uuid.unwrap_or_default(),
    }
}

fn response_from(r: ExtensionResponse) -> (Status, PluginRows) {
    (
        r.status.map(status_from).unwrap_or_default(),
        r.response.unwrap_or_default(),
    )
}

fn info_from(i: InternalExtensionInfo) -> ExtensionInfo {
    ExtensionInfo {
        name: i.name.unwrap_or_default(),
        version: i.version.unwrap_or_default(),
        sdk_version: i.sdk_version.unwrap_or_default(),
        min_sdk_version: i.min_sdk_version.unwrap_or_default(),
    }
}

fn option_from(o: InternalOptionInfo) -> OptionInfo {
    OptionInfo {
        value: o.value.unwrap_or_default(),
        default_value: o.default_value.unwrap_or_default(),
        value_type: o.type_.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_become_defaults() {
        let r = ExtensionResponse {
            status: None,
            response: None,
        };
        assert_eq!(response_from(r), (Status::default(), Vec::new()));
        let s = ExtensionStatus::new(None, Some("x".to_owned()), None);
        assert_eq!(
            status_from(s),
            Status {
                code: 0,
                message: "x".into(),
                uuid: 0
            }
        );
        let i = InternalExtensionInfo::new(Some("n".to_owned()), None, None, None);
        assert_eq!(info_from(i).name, "n");
    }

    fn reader(bytes: &[u8]) -> TBinaryInputProtocol<&[u8]> {
        TBinaryInputProtocol::with_config(bytes, false, client_limits())
    }

    #[test]
    fn hostile_sizes_are_errors_not_panics() {
        use thrift::protocol::{TInputProtocol, TSerializable};
        // ExtensionResponse whose field 2 (list) claims -1 elements.
        let mut bytes = vec![15, 0, 2, 13];
        bytes.extend((-1i32).to_be_bytes());
        let err = ExtensionResponse::read_from_in_protocol(&mut reader(&bytes)).unwrap_err();
        assert!(err.to_string().to_lowercase().contains("negative"), "{err}");
        // ... and 0x7fffffff elements (CVE-2026-43868's 51 GB allocation).
        let mut bytes = vec![15, 0, 2, 13];
        bytes.extend(i32::MAX.to_be_bytes());
        let err = ExtensionResponse::read_from_in_protocol(&mut reader(&bytes)).unwrap_err();
        assert!(
            matches!(&err, thrift::Error::Protocol(p) if p.kind == thrift::ProtocolErrorKind::SizeLimit),
            "{err}"
        );

        let neg = (-5i32).to_be_bytes();
        assert!(reader(&neg).read_string().is_err());
        let huge = i32::MAX.to_be_bytes();
        assert!(reader(&huge).read_bytes().is_err());
        let mut map = vec![11, 11];
        map.extend(i32::MAX.to_be_bytes());
        assert!(reader(&map).read_map_begin().is_err());
        // A prefix longer than the data just runs out.
        let mut short = 10i32.to_be_bytes().to_vec();
        short.extend(b"abc");
        assert!(reader(&short).read_string().is_err());
        // Old-style header whose name length is absurd.
        let old = 0x7fff_fff0i32.to_be_bytes();
        assert!(reader(&old).read_message_begin().is_err());
    }

    #[test]
    fn zero_timeout_is_rejected() {
        let err = ManagerClient::connect(Path::new("/nonexistent.sock"), Duration::ZERO)
            .expect_err("zero timeout");
        assert!(err.to_string().contains("timeout"), "{err}");
    }

    #[test]
    fn missing_socket_names_the_path() {
        let err = ManagerClient::connect(Path::new("/nonexistent.sock"), Duration::from_secs(1))
            .expect_err("no socket");
        assert!(err.to_string().contains("/nonexistent.sock"), "{err:#}");
    }
}
