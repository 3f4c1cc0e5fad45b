//! The two tables as osquery sees them: a schema and a generate function that
//! turns a query context into rows of strings.
//!
//! Nothing here knows about Thrift; the osquery binding adapts [`Table`] to
//! the wire, and the tests drive it directly or through SQLite.

use crate::constraints::{ContextError, QueryContext};
use crate::engine::Engine;
use crate::row::Row;
use crate::schema::{
    opt_int, Column, Value, EXEC_COLUMNS, EXEC_TABLE, STATUS_COLUMNS, STATUS_TABLE,
    STORE_STATUS_ROW,
};
use crate::status::State;
use crate::store::RowFilter;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a table could not answer a query.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// osqueryd's query context could not be read.
    #[error("{table}: bad query context: {err}")]
    BadContext {
        /// The table queried.
        table: &'static str,
        /// What was wrong with the context.
        err: ContextError,
    },
    /// The table's generate panicked (the panic is in the log).
    #[error("{table}: internal error while generating rows (see the extension's log)")]
    Panicked {
        /// The table queried.
        table: &'static str,
    },
    /// A call other than "columns" or "generate".
    #[error("{table}: unsupported action {action:?} (the table is read-only)")]
    UnsupportedAction {
        /// The table called.
        table: &'static str,
        /// The action osqueryd asked for (e.g. `insert`).
        action: String,
    },
    /// A call without an action.
    #[error("{table}: request has no action")]
    NoAction {
        /// The table called.
        table: &'static str,
    },
}

/// A result of a table.
pub type Result<T, E = TableError> = std::result::Result<T, E>;

/// A generate response row: column name → value as osqueryd expects it.
pub type OsqueryRow = BTreeMap<String, String>;

/// Stored rows as a query reads them: the rows the constraints allow, and
/// which of `EXEC_COLUMNS` the query uses.
pub struct FrozenRows {
    /// The matching rows, shared with the store (no copy per query).
    pub rows: Vec<Arc<Row>>,
    /// One flag per [`EXEC_COLUMNS`] entry: whether the query reads it.
    pub used: Vec<bool>,
}

/// A read-only osquery table: its schema and its generate. The osquery
/// binding and `--standalone` reach the engine only through this.
pub trait Table: Send + Sync {
    /// The table name osqueryd registers and queries.
    fn name(&self) -> &'static str;
    /// The schema, in the order osqueryd is told and rows are built.
    fn columns(&self) -> &'static [Column];
    /// Rows for a query. Must never return fewer rows than the constraints
    /// accept; more is fine (osqueryd filters again).
    fn generate(&self, ctx: &QueryContext) -> Result<Vec<OsqueryRow>>;

    /// The frozen rows a query reads and which columns it uses, for a
    /// binding that writes rows to the wire itself (no maps in between).
    /// `None` for tables whose rows are made per call.
    fn frozen_rows(&self, _ctx: &QueryContext) -> Option<FrozenRows> {
        None
    }

    /// Parses osqueryd's `context` string and generates. A malformed context
    /// is an error that says what was wrong.
    fn generate_from_json(&self, context: Option<&str>) -> Result<Vec<OsqueryRow>> {
        let ctx = match context {
            // osqueryd always sends a context; an absent one means "no
            // constraints", the safe reading.
            None => QueryContext::default(),
            Some(text) => QueryContext::parse(text).map_err(|err| TableError::BadContext {
                table: self.name(),
                err,
            })?,
        };
        self.generate(&ctx)
    }
}

/// Builds the response rows from cells, keeping only the used columns.
///
/// Columns are visited in name order, so each map is built from an already
/// sorted sequence (BTreeMap's bulk build then skips the sort). The
/// allocations of the response format itself (two strings per cell) are what
/// remains; see the benchmarks.
fn to_osquery_rows<'a, I, const N: usize>(
    columns: &[Column],
    used: &[bool],
    rows: I,
) -> Vec<OsqueryRow>
where
    I: Iterator<Item = [Value<'a>; N]>,
{
    let mut order: Vec<usize> = (0..columns.len().min(N))
        .filter(|i| used.get(*i).copied().unwrap_or(false))
        .collect();
    order.sort_by_key(|i| columns[*i].name);
    rows.map(|cells| {
        order
            .iter()
            .map(|i| (columns[*i].name.to_string(), cells[*i].to_osquery_string()))
            .collect()
    })
    .collect()
}

/// `kerberos_cache_access`: the engine's stored rows, filtered by the
/// query's `time` and `pid` constraints. Each query first runs the
/// snapshot's on-demand scan, when one is registered, and expires old rows.
pub struct ExecTable {
    engine: Arc<Engine>,
}

impl ExecTable {
    /// The exec table over `engine`'s store.
    pub fn new(engine: Arc<Engine>) -> ExecTable {
        ExecTable { engine }
    }

    fn select(&self, ctx: &QueryContext) -> FrozenRows {
        self.engine.refresh_for_query();
        FrozenRows {
            rows: self.engine.store().select(&Self::filter_of(ctx)),
            used: ctx.used_mask(EXEC_COLUMNS),
        }
    }

    /// The filter osqueryd's constraints allow: `time` ranges and `pid`
    /// equalities. Everything else is left to SQLite.
    pub(crate) fn filter_of(ctx: &QueryContext) -> RowFilter {
        RowFilter {
            time: ctx.int_range("time"),
            pids: ctx.int_equals("pid"),
        }
    }
}

impl Table for ExecTable {
    fn name(&self) -> &'static str {
        EXEC_TABLE
    }

    fn columns(&self) -> &'static [Column] {
        EXEC_COLUMNS
    }

    fn generate(&self, ctx: &QueryContext) -> Result<Vec<OsqueryRow>> {
        let FrozenRows { rows, used } = self.select(ctx);
        Ok(to_osquery_rows(
            EXEC_COLUMNS,
            &used,
            rows.iter().map(|r| r.values()),
        ))
    }

    fn frozen_rows(&self, ctx: &QueryContext) -> Option<FrozenRows> {
        Some(self.select(ctx))
    }
}

/// `kerberos_cache_access_status`: one row per source from the engine's
/// status board, plus the `store` row about the row store itself.
pub struct StatusTable {
    engine: Arc<Engine>,
}

impl StatusTable {
    /// The status table over `engine`'s status board and store.
    pub fn new(engine: Arc<Engine>) -> StatusTable {
        StatusTable { engine }
    }
}

impl Table for StatusTable {
    fn name(&self) -> &'static str {
        STATUS_TABLE
    }

    fn columns(&self) -> &'static [Column] {
        STATUS_COLUMNS
    }

    fn generate(&self, ctx: &QueryContext) -> Result<Vec<OsqueryRow>> {
        let statuses = self.engine.status().snapshot();
        let store = self.engine.store();
        let used = ctx.used_mask(STATUS_COLUMNS);
        let held = store.held_by_source();
        let count = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        let mut rows: Vec<[Value<'_>; STATUS_COLUMNS.len()]> = statuses
            .iter()
            .map(|s| {
                let evicted = store.evicted(s.source);
                let (rows, bytes) = held.get(&s.source).copied().unwrap_or_default();
                [
                    Value::Text(s.source.as_str()),
                    Value::Text(s.state.as_str()),
                    Value::Text(s.reason.as_str()),
                    count(s.events_seen),
                    count(s.rows_added),
                    count(s.dropped),
                    count(evicted.rows),
                    count(s.incomplete),
                    opt_int(s.last_event_time),
                    count(rows),
                    count(bytes),
                    count(evicted.detections),
                ]
            })
            .collect();
        // The store's own row: whether rows survive a restart, and what the
        // budgets cost (detections evicted by other detections above all).
        let (state, reason) = self.engine.status().store().unwrap_or((
            State::Active,
            "in memory: rows do not survive a restart".to_string(),
        ));
        let st = store.stats();
        let config = store.config();
        let reason = format!(
            "{reason}; {} row(s) ({} detection(s)), {} of {} byte(s), at most {} row(s)",
            st.rows, st.detections, st.bytes, config.max_bytes, config.max_rows
        );
        rows.push([
            Value::Text(STORE_STATUS_ROW),
            Value::Text(state.as_str()),
            Value::Text(&reason),
            Value::Null,
            count(st.inserted),
            Value::Null,
            count(st.evicted_capacity + st.evicted_age),
            Value::Null,
            Value::Null,
            count(st.rows as u64),
            count(st.bytes as u64),
            count(st.evicted_detections),
        ]);
        Ok(to_osquery_rows(STATUS_COLUMNS, &used, rows.into_iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ExecEvent, SourceKind};
    use crate::status::State;
    use crate::store::StoreConfig;
    use crate::users::FixedUsers;

    fn engine_with(n: i64) -> Arc<Engine> {
        let engine = Arc::new(Engine::new(
            StoreConfig::default(),
            Box::new(FixedUsers::default()),
        ));
        let counters = engine
            .status()
            .set(SourceKind::Snapshot, State::Active, "test");
        for i in 0..n {
            let e = ExecEvent {
                time: 1000 + i,
                pid: 100 + i,
                ppid: 1,
                path: b"/usr/bin/kcc".to_vec(),
                argv: vec![b"kcc".to_vec(), b"copy_cred_cache".to_vec()],
                ..ExecEvent::default()
            };
            engine.ingest(&e, &counters);
        }
        engine
    }

    fn ctx(json: &str) -> QueryContext {
        QueryContext::parse(json).unwrap()
    }

    #[test]
    fn generate_applies_time_and_pid_constraints() {
        let t = ExecTable::new(engine_with(10));
        assert_eq!(t.generate(&QueryContext::default()).unwrap().len(), 10);
        let rows = t
            .generate(&ctx(
                r#"{"constraints":[{"name":"time","list":[{"op":32,"expr":"1005"}]}]}"#,
            ))
            .unwrap();
        assert_eq!(rows.len(), 5);
        let rows = t
            .generate(&ctx(
                r#"{"constraints":[{"name":"pid","list":[{"op":2,"expr":"103"}]}]}"#,
            ))
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["pid"], "103");
        assert_eq!(rows[0]["indicator"], "credential_cache_copy");
        assert_eq!(rows[0].len(), EXEC_COLUMNS.len());
    }

    #[test]
    fn unusable_constraints_return_everything() {
        let t = ExecTable::new(engine_with(3));
        let rows = t
            .generate(&ctx(
                r#"{"constraints":[{"name":"time","list":[{"op":65,"expr":"1%"},{"op":4,"expr":"x"}]},{"name":"cmdline","list":[{"op":2,"expr":"nothing"}]}]}"#,
            ))
            .unwrap();
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn only_used_columns_are_sent() {
        let t = ExecTable::new(engine_with(2));
        let rows = t
            .generate(&ctx(r#"{"constraints":[],"colsUsed":["pid","time"]}"#))
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].keys().collect::<Vec<_>>(), ["pid", "time"]);
    }

    #[test]
    fn rows_are_identical_across_queries() {
        let t = ExecTable::new(engine_with(4));
        let a = t.generate(&QueryContext::default()).unwrap();
        let b = t.generate(&QueryContext::default()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn malformed_context_is_a_clear_error() {
        let t = ExecTable::new(engine_with(1));
        let err = t
            .generate_from_json(Some("{not json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("kerberos_cache_access: bad query context"),
            "{err}"
        );
    }

    #[test]
    fn status_rows_have_counters() {
        let engine = engine_with(3);
        let rows = StatusTable::new(engine)
            .generate(&QueryContext::default())
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["source"], "snapshot");
        assert_eq!(rows[0]["state"], "active");
        assert_eq!(rows[0]["rows_added"], "3");
        assert_eq!(rows[0]["events_seen"], "3");
        assert_eq!(rows[0]["last_event_time"], "1002");
        assert_eq!(rows[0]["evicted"], "0");
        assert_eq!(rows[0]["rows"], "3");
        assert_eq!(rows[0]["evicted_detections"], "0");
        let store = &rows[1];
        assert_eq!(store["source"], "store");
        assert_eq!(store["rows"], "3");
        assert_eq!(store["events_seen"], "");
        assert!(store["bytes"].parse::<u64>().unwrap() > 3 * 300);
        assert!(store["reason"].contains("in memory"), "{}", store["reason"]);
    }
}
