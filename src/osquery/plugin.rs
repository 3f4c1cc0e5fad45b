//! Adapts our [`Table`]s to osquery-rust-ng's plugin interface.
//!
//! We implement `OsqueryPlugin` ourselves instead of using the crate's table
//! helpers because we need: every column option and type on the wire, an
//! error *status message* osqueryd shows the user (the crate puts it in a row),
//! and generate panics turned into errors.

use crate::table::Table;
use osquery_rust_ng::plugin::{OsqueryPlugin, Registry};
use osquery_rust_ng::{
    ExtensionPluginRequest, ExtensionPluginResponse, ExtensionResponse, ExtensionStatus,
};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

#[derive(Clone)]
pub struct TablePlugin {
    table: Arc<dyn Table>,
}

impl TablePlugin {
    pub fn new(table: Arc<dyn Table>) -> TablePlugin {
        TablePlugin { table }
    }
}

fn ok(rows: ExtensionPluginResponse) -> ExtensionResponse {
    ExtensionResponse::new(ExtensionStatus::new(0, "OK".to_string(), None), rows)
}

/// An error osqueryd reports to the user: it reads `status.message`.
fn failure(message: String) -> ExtensionResponse {
    log::warn!("{message}");
    let row = BTreeMap::from([
        ("status".to_string(), "failure".to_string()),
        ("message".to_string(), message.clone()),
    ]);
    ExtensionResponse::new(ExtensionStatus::new(1, message, None), vec![row])
}

/// The columns response: one entry per column, in declaration order (that
/// order defines osqueryd's colsUsedBitset).
pub fn column_routes(table: &dyn Table) -> ExtensionPluginResponse {
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
                    Ok(Err(e)) => failure(format!("{e:#}")),
                    Err(_) => failure(format!(
                        "{name}: internal error while generating rows (see the extension's log)"
                    )),
                }
            }
            Some(other) => failure(format!(
                "{name}: unsupported action {other:?} (the table is read-only)"
            )),
            None => failure(format!("{name}: request has no action")),
        }
    }

    fn shutdown(&self) {}
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
