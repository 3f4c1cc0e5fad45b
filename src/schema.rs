//! Table schemas: column names, osquery types and column options.
//!
//! One list per table is the single source of truth for the columns response,
//! the generate response, the standalone JSON and the tests.

/// osquery column types (`core/sql/column.cpp`); the string is what osqueryd
/// expects in the columns response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `TEXT`: a string cell.
    Text,
    /// `INTEGER`: a 32-bit integer cell; used for 0/1 flags.
    Integer,
    /// `BIGINT`: a 64-bit integer cell; used for times, pids, ids and counters.
    BigInt,
}

impl ColumnType {
    /// The type's name as osqueryd's columns response spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Text => "TEXT",
            ColumnType::Integer => "INTEGER",
            ColumnType::BigInt => "BIGINT",
        }
    }
}

/// osquery `ColumnOptions` bits (`core/sql/column.h`).
pub mod options {
    /// The column is a primary key: osqueryd passes `=` constraints on it to
    /// generate, and SQLite prefers it for joins.
    pub const INDEX: u32 = 1;
    /// Constraints on the column are passed to generate, which may use them
    /// to return less (as osquery's event tables do with `time`).
    pub const ADDITIONAL: u32 = 4;
    /// The column is left out of `SELECT *`.
    pub const HIDDEN: u32 = 16;
    /// SQLite's default collation anyway. Any non-zero option stops osqueryd
    /// (`--extensions_default_index`) from promoting a column to INDEX, which
    /// would make SQLite put the table in the inner loop of joins and call
    /// generate once per outer row.
    pub(crate) const COLLATEBINARY: u32 = 32;
}

/// One column of a table's schema, as the columns response describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column name, as queries and the standalone JSON spell it.
    pub name: &'static str,
    /// The osquery type osqueryd is told.
    pub ty: ColumnType,
    /// [`options`] bits, OR-ed; 0 for none.
    pub options: u32,
}

const fn col(name: &'static str, ty: ColumnType, options: u32) -> Column {
    Column { name, ty, options }
}

use options::{ADDITIONAL, COLLATEBINARY, INDEX};
use ColumnType::{BigInt, Integer, Text};

/// Name of the exec table, and of the extension itself.
pub const EXEC_TABLE: &str = "kerberos_cache_access";
/// Name of the per-source health table.
pub const STATUS_TABLE: &str = "kerberos_cache_access_status";

/// `kerberos_cache_access`: one row per Kerberos-related process execution.
/// Only `time` (ADDITIONAL, as in osquery's event tables) and `pid` (INDEX)
/// receive constraints.
pub const EXEC_COLUMNS: &[Column] = &[
    col("time", BigInt, ADDITIONAL),
    col("eid", Text, COLLATEBINARY),
    col("pid", BigInt, INDEX),
    col("parent", BigInt, COLLATEBINARY),
    col("path", Text, COLLATEBINARY),
    col("name", Text, COLLATEBINARY),
    col("cmdline", Text, COLLATEBINARY),
    col("args", Text, COLLATEBINARY),
    col("cwd", Text, COLLATEBINARY),
    col("uid", BigInt, COLLATEBINARY),
    col("euid", BigInt, COLLATEBINARY),
    col("gid", BigInt, COLLATEBINARY),
    col("egid", BigInt, COLLATEBINARY),
    col("auid", BigInt, COLLATEBINARY),
    col("username", Text, COLLATEBINARY),
    col("parent_path", Text, COLLATEBINARY),
    col("parent_cmdline", Text, COLLATEBINARY),
    col("tool", Text, COLLATEBINARY),
    col("action", Text, COLLATEBINARY),
    col("ccache", Text, COLLATEBINARY),
    col("indicator", Text, COLLATEBINARY),
    col("technique", Text, COLLATEBINARY),
    col("signing_id", Text, COLLATEBINARY),
    col("team_id", Text, COLLATEBINARY),
    col("platform_binary", Integer, COLLATEBINARY),
    col("sha256", Text, COLLATEBINARY),
    col("source", Text, COLLATEBINARY),
    col("truncated", Integer, COLLATEBINARY),
];

/// `kerberos_cache_access_status`: one row per event source, so Fleet can see
/// where the detection is blind, and one row (`store`) about the row store.
pub const STATUS_COLUMNS: &[Column] = &[
    col("source", Text, COLLATEBINARY),
    col("state", Text, COLLATEBINARY),
    col("reason", Text, COLLATEBINARY),
    col("events_seen", BigInt, COLLATEBINARY),
    col("rows_added", BigInt, COLLATEBINARY),
    col("dropped", BigInt, COLLATEBINARY),
    col("evicted", BigInt, COLLATEBINARY),
    col("incomplete", BigInt, COLLATEBINARY),
    col("last_event_time", BigInt, COLLATEBINARY),
    col("rows", BigInt, COLLATEBINARY),
    col("bytes", BigInt, COLLATEBINARY),
    col("evicted_detections", BigInt, COLLATEBINARY),
];

/// The `source` value of the status table's row about the store itself.
pub(crate) const STORE_STATUS_ROW: &str = "store";

/// A cell value. `Null` is sent to osqueryd as an empty string, which it
/// turns into SQL NULL for numeric columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer cell (BIGINT or INTEGER column).
    Int(i64),
    /// A text cell, borrowed from the row.
    Text(&'a str),
    /// Unknown: SQL NULL in osquery, `null` in the standalone JSON.
    Null,
}

impl Value<'_> {
    /// The string osqueryd expects in a generate response.
    pub(crate) fn to_osquery_string(self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Text(s) => s.to_string(),
            Value::Null => String::new(),
        }
    }

    pub(crate) fn to_json(self) -> serde_json::Value {
        match self {
            Value::Int(i) => serde_json::Value::from(i),
            Value::Text(s) => serde_json::Value::from(s),
            Value::Null => serde_json::Value::Null,
        }
    }
}

pub(crate) fn opt_int(v: Option<i64>) -> Value<'static> {
    v.map_or(Value::Null, Value::Int)
}
