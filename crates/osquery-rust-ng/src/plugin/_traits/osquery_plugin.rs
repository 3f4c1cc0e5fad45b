use crate::plugin::Registry;

/// How a plugin answers a call.
pub enum CallReply {
    /// A response built as a value and serialized by the generated code.
    Plain(crate::_osquery::ExtensionResponse),
    /// A successful response (status code 0, "OK") whose rows the plugin
    /// writes straight to the connection, with no intermediate maps.
    Rows(Box<dyn RowStream>),
}

/// Rows written straight to the connection in Thrift's binary protocol.
pub trait RowStream: Send {
    /// How many rows [`RowStream::write_rows`] writes (the list header
    /// comes first).
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes exactly [`RowStream::len`] rows, each a binary-protocol
    /// `map<string,string>` (see [`crate::wire`]), and returns how many it
    /// wrote; the server refuses to finish a reply whose count differs.
    fn write_rows(&self, out: &mut dyn std::io::Write) -> std::io::Result<usize>;
}

pub trait OsqueryPlugin: Send + Sync {
    fn name(&self) -> String;
    fn registry(&self) -> Registry;
    fn routes(&self) -> crate::_osquery::ExtensionPluginResponse;
    fn ping(&self) -> crate::_osquery::ExtensionStatus;
    fn handle_call(
        &self,
        request: crate::_osquery::ExtensionPluginRequest,
    ) -> crate::_osquery::ExtensionResponse;

    /// What the server calls: by default [`OsqueryPlugin::handle_call`]'s
    /// response. A plugin with many rows returns [`CallReply::Rows`].
    fn handle_call_reply(&self, request: crate::_osquery::ExtensionPluginRequest) -> CallReply {
        CallReply::Plain(self.handle_call(request))
    }

    fn shutdown(&self);
}
