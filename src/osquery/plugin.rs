//! Adapts our [`Table`]s to osquery-rust-ng's plugin interface.
//!
//! We implement `OsqueryPlugin` ourselves instead of using the crate's table
//! helpers because we need: every column option and type on the wire, an
//! error *status message* osqueryd shows the user (the crate puts it in a row),
//! generate panics turned into errors, and rows written to the wire straight
//! from the store's frozen rows (`ExecRows`): no map or string per cell,
//! and nothing kept per row beyond the row itself (so nothing to add to
//! the store's byte budget).

use crate::constraints::QueryContext;
use crate::row::Row;
use crate::schema::{Column, Value};
use crate::table::{FrozenRows, Table, TableError};
use osquery_rust_ng::plugin::{CallReply, OsqueryPlugin, Registry, RowStream};
use osquery_rust_ng::wire;
use osquery_rust_ng::{
    ExtensionPluginRequest, ExtensionPluginResponse, ExtensionResponse, ExtensionStatus,
};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// One of our [`Table`]s as an osquery-rust-ng table plugin, the unit the
/// extension server registers and routes osqueryd's calls to. Cheap to
/// clone: it shares the table.
#[derive(Clone)]
pub struct TablePlugin {
    table: Arc<dyn Table>,
}

impl TablePlugin {
    /// Wraps `table`; its name and columns become the plugin's name and
    /// routes.
    pub fn new(table: Arc<dyn Table>) -> TablePlugin {
        TablePlugin { table }
    }
}

fn ok(rows: ExtensionPluginResponse) -> ExtensionResponse {
    ExtensionResponse::new(ExtensionStatus::new(0, "OK".to_string(), None), rows)
}

/// An error osqueryd reports to the user: it reads `status.message`.
fn failure(err: &TableError) -> ExtensionResponse {
    let message = err.to_string();
    log::warn!("{message}");
    let row = BTreeMap::from([
        ("status".to_string(), "failure".to_string()),
        ("message".to_string(), message.clone()),
    ]);
    ExtensionResponse::new(ExtensionStatus::new(1, message, None), vec![row])
}

/// The columns response: one entry per column, in declaration order (that
/// order defines osqueryd's colsUsedBitset).
pub(crate) fn column_routes(table: &dyn Table) -> ExtensionPluginResponse {
    table
        .columns()
        .iter()
        .map(|c| {
            BTreeMap::from([
                ("id".to_string(), "column".to_string()),
                ("name".to_string(), c.name.to_string()),
                ("type".to_string(), c.ty.as_str().to_string()),
                ("op".to_string(), c.options.to_string()),
            ])
        })
        .collect()
}

impl OsqueryPlugin for TablePlugin {
    fn name(&self) -> String {
        self.table.name().to_string()
    }

    fn registry(&self) -> Registry {
        Registry::Table
    }

    fn routes(&self) -> ExtensionPluginResponse {
        column_routes(self.table.as_ref())
    }

    fn ping(&self) -> ExtensionStatus {
        ExtensionStatus::new(0, "OK".to_string(), None)
    }

    fn handle_call(&self, request: ExtensionPluginRequest) -> ExtensionResponse {
        let name = self.table.name();
        match request.get("action").map(String::as_str) {
            Some("columns") => ok(self.routes()),
            Some("generate") => {
                let context = request.get("context").map(String::as_str);
                let result =
                    catch_unwind(AssertUnwindSafe(|| self.table.generate_from_json(context)));
                match result {
                    Ok(Ok(rows)) => ok(rows),
                    Ok(Err(e)) => failure(&e),
                    Err(_) => failure(&TableError::Panicked { table: name }),
                }
            }
            Some(other) => failure(&TableError::UnsupportedAction {
                table: name,
                action: other.to_string(),
            }),
            None => failure(&TableError::NoAction { table: name }),
        }
    }

    fn handle_call_reply(&self, request: ExtensionPluginRequest) -> CallReply {
        if request.get("action").map(String::as_str) != Some("generate") {
            return CallReply::Plain(self.handle_call(request));
        }
        let name = self.table.name();
        let ctx = match request.get("context").map(String::as_str) {
            None => QueryContext::default(),
            Some(text) => match QueryContext::parse(text) {
                Ok(ctx) => ctx,
                Err(err) => {
                    return CallReply::Plain(failure(&TableError::BadContext { table: name, err }))
                }
            },
        };
        match catch_unwind(AssertUnwindSafe(|| self.table.frozen_rows(&ctx))) {
            Ok(Some(frozen)) => {
                CallReply::Rows(Box::new(ExecRows::new(self.table.columns(), frozen)))
            }
            Ok(None) => CallReply::Plain(self.handle_call(request)),
            Err(_) => CallReply::Plain(failure(&TableError::Panicked { table: name })),
        }
    }

    fn shutdown(&self) {}
}

/// Frozen rows on their way to the wire: each row one Thrift
/// `map<string,string>` of the used columns (in name order, like the maps of
/// [`Table::generate`]), encoded into a 64 KiB buffer that goes to the
/// connection as it fills. Values are the same strings as
/// [`Value::to_osquery_string`].
pub(crate) struct ExecRows {
    rows: Vec<Arc<Row>>,
    /// (index into the row's values, the column name already encoded).
    cells: Vec<(usize, Vec<u8>)>,
}

impl ExecRows {
    pub(crate) fn new(columns: &[Column], frozen: FrozenRows) -> ExecRows {
        let mut order: Vec<usize> = (0..columns.len())
            .filter(|i| frozen.used.get(*i).copied().unwrap_or(false))
            .collect();
        order.sort_by_key(|i| columns[*i].name);
        let cells = order
            .into_iter()
            .map(|i| {
                let mut key = Vec::new();
                wire::string(&mut key, columns[i].name.as_bytes());
                (i, key)
            })
            .collect();
        ExecRows {
            rows: frozen.rows,
            cells,
        }
    }
}

/// How much is encoded before it is handed to the connection.
const CHUNK: usize = 64 << 10;

impl RowStream for ExecRows {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn write_rows(&self, out: &mut dyn std::io::Write) -> std::io::Result<usize> {
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        let mut digits = itoa::Buffer::new();
        for row in &self.rows {
            let values = row.values();
            wire::map_header(&mut buf, self.cells.len());
            for (i, key) in &self.cells {
                buf.extend_from_slice(key);
                match values.get(*i).unwrap_or(&Value::Null) {
                    Value::Int(n) => wire::string(&mut buf, digits.format(*n).as_bytes()),
                    Value::Text(s) => wire::string(&mut buf, s.as_bytes()),
                    Value::Null => wire::string(&mut buf, b""),
                }
            }
            if buf.len() >= CHUNK {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        out.write_all(&buf)?;
        Ok(self.rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::schema::EXEC_COLUMNS;
    use crate::store::StoreConfig;
    use crate::table::ExecTable;
    use crate::users::FixedUsers;

    fn plugin() -> TablePlugin {
        let engine = Arc::new(Engine::new(
            StoreConfig::default(),
            Box::new(FixedUsers::default()),
        ));
        TablePlugin::new(Arc::new(ExecTable::new(engine)))
    }

    fn call(p: &TablePlugin, pairs: &[(&str, &str)]) -> ExtensionResponse {
        p.handle_call(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn columns_carry_types_and_options() {
        let r = call(&plugin(), &[("action", "columns")]);
        assert_eq!(r.status.unwrap().code, Some(0));
        let cols = r.response.unwrap();
        assert_eq!(cols.len(), EXEC_COLUMNS.len());
        assert_eq!(cols[0]["name"], "time");
        assert_eq!(cols[0]["type"], "BIGINT");
        assert_eq!(cols[0]["op"], "4");
        assert_eq!(cols[2]["name"], "pid");
        assert_eq!(cols[2]["op"], "1");
        assert_eq!(cols[1]["op"], "32");
    }

    #[test]
    fn errors_reach_the_status_message() {
        let r = call(&plugin(), &[("action", "generate"), ("context", "{oops")]);
        let status = r.status.unwrap();
        assert_eq!(status.code, Some(1));
        assert!(status.message.unwrap().contains("bad query context"));
        let r = call(&plugin(), &[("action", "insert")]);
        assert!(r.status.unwrap().message.unwrap().contains("read-only"));
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use crate::engine::Engine;
    use crate::event::{ExecEvent, SourceKind};
    use crate::status::State;
    use crate::store::StoreConfig;
    use crate::table::ExecTable;
    use crate::users::FixedUsers;
    use thrift::protocol::{TBinaryInputProtocol, TInputProtocol};

    fn table() -> ExecTable {
        let engine = Arc::new(Engine::new(
            StoreConfig::default(),
            Box::new(FixedUsers(vec![(501, "alice".into())])),
        ));
        let counters = engine
            .status()
            .set(SourceKind::Snapshot, State::Active, "test");
        for i in 0..40 {
            let e = ExecEvent {
                time: 1000 + i,
                pid: 100 + i,
                ppid: 1,
                path: b"/usr/bin/kcc".to_vec(),
                argv: vec![
                    b"kcc".to_vec(),
                    b"copy_cred_cache".to_vec(),
                    format!("/tmp/\u{e9}\"{i}").into_bytes(),
                ],
                uid: (i % 2 == 0).then_some(501),
                cwd: Some(b"/home/alice".to_vec()),
                ..ExecEvent::default()
            };
            engine.ingest(&e, &counters);
        }
        ExecTable::new(engine)
    }

    fn decode(bytes: &[u8], n: usize) -> Vec<BTreeMap<String, String>> {
        let mut p = TBinaryInputProtocol::new(bytes, true);
        let rows = (0..n)
            .map(|_| {
                let m = p.read_map_begin().unwrap();
                (0..m.size)
                    .map(|_| (p.read_string().unwrap(), p.read_string().unwrap()))
                    .collect()
            })
            .collect();
        assert!(p.read_byte().is_err(), "bytes left over");
        rows
    }

    #[test]
    fn wire_rows_equal_the_generated_maps() {
        let t = table();
        for json in [
            r#"{"constraints":[],"colsUsedBitset":0}"#,
            r#"{"constraints":[],"colsUsed":[],"colsUsedBitset":0}"#,
            r#"{"constraints":[{"name":"time","list":[{"op":32,"expr":"1030"}]}],"colsUsed":["uid","args","time","pid"]}"#,
            r#"{"constraints":[{"name":"pid","list":[{"op":2,"expr":"103"}]}]}"#,
        ] {
            let ctx = QueryContext::parse(json).unwrap();
            let expected = t.generate(&ctx).unwrap();
            let stream = ExecRows::new(t.columns(), t.frozen_rows(&ctx).unwrap());
            assert_eq!(stream.len(), expected.len(), "{json}");
            let mut out = Vec::new();
            assert_eq!(stream.write_rows(&mut out).unwrap(), expected.len());
            assert_eq!(decode(&out, expected.len()), expected, "{json}");
        }
    }

    #[test]
    fn generate_replies_with_rows_errors_with_a_status() {
        let p = TablePlugin::new(Arc::new(table()));
        let req = |pairs: &[(&str, &str)]| -> ExtensionPluginRequest {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        match p.handle_call_reply(req(&[("action", "generate"), ("context", "{}")])) {
            CallReply::Rows(rows) => assert_eq!(rows.len(), 40),
            CallReply::Plain(r) => panic!("{r:?}"),
        }
        match p.handle_call_reply(req(&[("action", "generate"), ("context", "{oops")])) {
            CallReply::Plain(r) => assert_eq!(r.status.unwrap().code, Some(1)),
            CallReply::Rows(_) => panic!("rows for a bad context"),
        }
        match p.handle_call_reply(req(&[("action", "columns")])) {
            CallReply::Plain(r) => {
                assert_eq!(r.response.unwrap().len(), crate::schema::EXEC_COLUMNS.len())
            }
            CallReply::Rows(_) => panic!("rows for columns"),
        }
    }
}
