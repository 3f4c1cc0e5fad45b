//! A stand-in for the part of osqueryd that sits between SQLite and an
//! extension table, so the pack's SQL can run in a real SQLite against the
//! real table code.
//!
//! What it reproduces (osquery `sql/virtual_table.cpp` and `core/tables.cpp`,
//! as described in the project's research notes, §2.4):
//! - the table is declared from the table's own column list, with INDEX and
//!   ADDITIONAL columns as the PRIMARY KEY of a WITHOUT ROWID table when at
//!   least one column is INDEX, and attached as `temp.<name>`;
//! - `xBestIndex` forwards a usable constraint only when its column is INDEX,
//!   ADDITIONAL or REQUIRED, never a range operator on a TEXT column, gives it
//!   an argv slot and never sets `omit`, so SQLite re-checks every term;
//! - `xFilter` skips NULL and empty right-hand values, builds the `context`
//!   JSON (one entry per column sorted by name, then `colsUsed` and
//!   `colsUsedBitset`) and hands it to `Table::generate_from_json`;
//! - `xColumn` turns the returned strings into SQL values the way
//!   `dynamic_table_row.cpp` does: TEXT as is, numbers parsed with C's base-0
//!   rules (so "010" is octal), an empty or unparsable number is NULL, INTEGER
//!   is 32-bit, and a missing key is NULL.
//!
//! Every generate call is recorded (context and row count) so tests can check
//! what reached the extension.

use kerberos_cache_access::schema::{options, Column, ColumnType};
use kerberos_cache_access::table::{OsqueryRow, Table};
use rusqlite::types::Value;
use rusqlite::vtab::{
    sqlite3_vtab, sqlite3_vtab_cursor, Context, CreateVTab, Filters, IndexConstraintOp, IndexInfo,
    Module, VTab, VTabConnection, VTabCursor, VTabKind,
};
use rusqlite::{Connection, Error, Result};
use std::borrow::Cow;
use std::ffi::{c_int, CStr, CString};
use std::sync::{Arc, Mutex};

/// osquery's `ColumnOptions::REQUIRED`; our schema module has no use for it.
const REQUIRED: u32 = 2;
/// osquery's `kMaxIndexCost`: the cost of a scan without a usable constraint.
const MAX_INDEX_COST: f64 = 1_000_000.0;

/// SQLite's constraint operator codes for the range comparisons.
const OP_GT: u8 = 4;
const OP_LE: u8 = 8;
const OP_LT: u8 = 16;
const OP_GE: u8 = 32;

/// One `generate` call as the extension saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateCall {
    /// The `context` string, exactly as it was passed.
    pub context: String,
    /// How many rows the table returned (before SQLite's own filtering).
    pub rows: usize,
}

/// One extension table as osqueryd would reach it, plus a record of the calls.
pub struct Backend {
    table: Arc<dyn Table>,
    calls: Mutex<Vec<GenerateCall>>,
}

impl Backend {
    pub fn new(table: Arc<dyn Table>) -> Arc<Backend> {
        Arc::new(Backend {
            table,
            calls: Mutex::new(Vec::new()),
        })
    }

    pub fn columns(&self) -> &'static [Column] {
        self.table.columns()
    }

    /// The calls recorded so far, which are then forgotten.
    pub fn take_calls(&self) -> Vec<GenerateCall> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

/// Registers the module and attaches the table, as osqueryd's
/// `attachTableInternal` does for each registered table.
pub fn attach(conn: &Connection, backend: Arc<Backend>) -> Result<()> {
    const MODULE: Module<'static, OsqueryTable> = Module::read_only_module();
    let name = backend.table.name();
    conn.create_module(name, &MODULE, Some(backend))?;
    conn.execute_batch(&format!("CREATE VIRTUAL TABLE temp.{name} USING {name}"))
}

/// The `CREATE TABLE` statement osqueryd declares for a column list.
pub fn create_statement(columns: &[Column]) -> String {
    let mut defs: Vec<String> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    let mut indexed = false;
    for c in columns {
        let mut def = format!("`{}` {}", c.name, c.ty.as_str());
        if c.options & (options::INDEX | options::ADDITIONAL) != 0 {
            indexed |= c.options & options::INDEX != 0;
            keys.push(format!("`{}`", c.name));
        }
        if c.options & options::HIDDEN != 0 {
            def.push_str(" HIDDEN");
        }
        defs.push(def);
    }
    // Only ADDITIONAL columns and no INDEX: osquery declares no key at all.
    if indexed {
        defs.push(format!("PRIMARY KEY ({})", keys.join(", ")));
        format!("CREATE TABLE x({}) WITHOUT ROWID", defs.join(", "))
    } else {
        format!("CREATE TABLE x({})", defs.join(", "))
    }
}

/// The raw `sqlite3_index_constraint.op`, which osqueryd forwards unchanged.
fn op_code(op: &IndexConstraintOp) -> u8 {
    match op {
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ => 2,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_GT => OP_GT,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_LE => OP_LE,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_LT => OP_LT,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_GE => OP_GE,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_MATCH => 64,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_LIKE => 65,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_GLOB => 66,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_REGEXP => 67,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_NE => 68,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_ISNOT => 69,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_ISNOTNULL => 70,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_ISNULL => 71,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_IS => 72,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_LIMIT => 73,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_OFFSET => 74,
        IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_FUNCTION(code) => *code,
    }
}

/// The plan chosen in `best_index`, carried to `filter` in `idxStr`:
/// `<colUsed>;<column>:<op>,<column>:<op>…`, one pair per argv slot.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    cols_used: u64,
    constraints: Vec<(usize, u8)>,
}

impl Plan {
    fn encode(&self) -> String {
        let pairs: Vec<String> = self
            .constraints
            .iter()
            .map(|(col, op)| format!("{col}:{op}"))
            .collect();
        format!("{};{}", self.cols_used, pairs.join(","))
    }

    fn decode(text: &str) -> Result<Plan> {
        let bad = || Error::ModuleError(format!("bad idxStr {text:?}"));
        let (used, pairs) = text.split_once(';').ok_or_else(bad)?;
        let mut plan = Plan {
            cols_used: used.parse().map_err(|_| bad())?,
            constraints: Vec::new(),
        };
        for pair in pairs.split(',').filter(|p| !p.is_empty()) {
            let (col, op) = pair.split_once(':').ok_or_else(bad)?;
            plan.constraints.push((
                col.parse().map_err(|_| bad())?,
                op.parse().map_err(|_| bad())?,
            ));
        }
        Ok(plan)
    }
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The `context` JSON osqueryd builds in `xFilter`: one constraint entry per
/// column, sorted by column name (osquery keeps them in a `std::map`), then the
/// used columns by name and as a bitset (bit 63 stands for every column from
/// the 64th on).
fn context_json(columns: &[Column], lists: &[Vec<(u8, String)>], cols_used: u64) -> String {
    let mut order: Vec<usize> = (0..columns.len()).collect();
    order.sort_by_key(|&i| columns[i].name);
    let entries: Vec<String> = order
        .iter()
        .map(|&i| {
            let list: Vec<String> = lists[i]
                .iter()
                .map(|(op, expr)| format!(r#"{{"op":{op},"expr":{}}}"#, json_str(expr)))
                .collect();
            format!(
                r#"{{"name":{},"list":[{}],"affinity":{}}}"#,
                json_str(columns[i].name),
                list.join(","),
                json_str(columns[i].ty.as_str())
            )
        })
        .collect();
    let used: Vec<String> = columns
        .iter()
        .enumerate()
        .filter(|(i, _)| cols_used & (1u64 << (*i).min(63)) != 0)
        .map(|(_, c)| json_str(c.name))
        .collect();
    format!(
        r#"{{"constraints":[{}],"colsUsed":[{}],"colsUsedBitset":{cols_used}}}"#,
        entries.join(","),
        used.join(",")
    )
}

/// `sqlite3_value_text` of a constraint value; `None` for NULL.
fn value_text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Integer(i) => Some(i.to_string()),
        // SQLite prints reals with %!.15g; Debug formatting agrees for the
        // values a test uses (it keeps the ".0").
        Value::Real(f) => Some(format!("{f:?}")),
        Value::Text(s) => Some(s),
        Value::Blob(b) => Some(String::from_utf8_lossy(&b).into_owned()),
    }
}

/// C's `strtoll(s, &end, 0)` with the whole string consumed: an optional
/// sign, then hex after "0x", octal after a leading "0", decimal otherwise.
pub fn parse_base0(s: &str) -> Option<i64> {
    let (negative, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        (16, hex)
    } else if unsigned.len() > 1 && unsigned.starts_with('0') {
        (8, &unsigned[1..])
    } else {
        (10, unsigned)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// The SQL value osqueryd makes of one generate-response cell.
pub fn sql_value(ty: ColumnType, cell: Option<&str>) -> Value {
    let Some(text) = cell else {
        return Value::Null;
    };
    match ty {
        ColumnType::Text => Value::Text(text.to_string()),
        ColumnType::BigInt => parse_base0(text).map_or(Value::Null, Value::Integer),
        // sqlite3_result_int: the parsed value is cut to 32 bits.
        #[allow(clippy::cast_possible_truncation)]
        ColumnType::Integer => {
            parse_base0(text).map_or(Value::Null, |v| Value::Integer(i64::from(v as i32)))
        }
    }
}

#[repr(C)]
pub struct OsqueryTable {
    /// Must come first (rusqlite's contract for `VTab`).
    base: sqlite3_vtab,
    backend: Arc<Backend>,
}

unsafe impl<'vtab> VTab<'vtab> for OsqueryTable {
    type Aux = Arc<Backend>;
    type Cursor = OsqueryCursor;

    fn connect(
        _db: &mut VTabConnection,
        aux: Option<&Arc<Backend>>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        _args: &[&[u8]],
    ) -> Result<(Cow<'static, CStr>, Self)> {
        let backend = Arc::clone(aux.ok_or_else(|| Error::ModuleError("no backend".into()))?);
        let sql = CString::new(create_statement(backend.columns()))?;
        Ok((
            Cow::Owned(sql),
            OsqueryTable {
                base: sqlite3_vtab::default(),
                backend,
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> Result<bool> {
        let columns = self.backend.columns();
        let offered: Vec<(usize, bool, c_int, u8)> = info
            .constraints()
            .enumerate()
            .map(|(i, c)| (i, c.is_usable(), c.column(), op_code(&c.operator())))
            .collect();
        let mut plan = Plan {
            cols_used: info.col_used(),
            constraints: Vec::new(),
        };
        let mut cost = MAX_INDEX_COST;
        for (i, usable, column, op) in offered {
            if !usable {
                continue;
            }
            let Some(index) = usize::try_from(column).ok().filter(|c| *c < columns.len()) else {
                continue;
            };
            let col = &columns[index];
            if col.ty == ColumnType::Text && matches!(op, OP_GT | OP_LE | OP_LT | OP_GE) {
                cost += 10.0;
                continue;
            }
            if col.options & (options::INDEX | options::ADDITIONAL | REQUIRED) == 0 {
                // Not indexed: SQLite filters it.
                continue;
            }
            cost = 1.0;
            plan.constraints.push((index, op));
            let slot = c_int::try_from(plan.constraints.len()).expect("few constraints");
            // argv slot only; `omit` stays false, as in osqueryd.
            info.constraint_usage(i).set_argv_index(slot);
        }
        info.set_idx_str(&plan.encode());
        info.set_estimated_cost(cost);
        Ok(true)
    }

    fn open(&'vtab mut self) -> Result<OsqueryCursor> {
        Ok(OsqueryCursor {
            base: sqlite3_vtab_cursor::default(),
            backend: Arc::clone(&self.backend),
            rows: Vec::new(),
            pos: 0,
        })
    }
}

impl CreateVTab<'_> for OsqueryTable {
    // osqueryd uses the same function for xCreate and xConnect.
    const KIND: VTabKind = VTabKind::Eponymous;
}

#[repr(C)]
pub struct OsqueryCursor {
    /// Must come first (rusqlite's contract for `VTabCursor`).
    base: sqlite3_vtab_cursor,
    backend: Arc<Backend>,
    rows: Vec<OsqueryRow>,
    pos: usize,
}

unsafe impl VTabCursor for OsqueryCursor {
    fn filter(&mut self, _idx_num: c_int, idx_str: Option<&str>, args: &Filters<'_>) -> Result<()> {
        let plan = Plan::decode(idx_str.unwrap_or("0;"))?;
        let columns = self.backend.columns();
        let mut lists: Vec<Vec<(u8, String)>> = vec![Vec::new(); columns.len()];
        for (slot, (col, op)) in plan.constraints.iter().enumerate() {
            let Some(expr) = value_text(args.get::<Value>(slot)?) else {
                continue;
            };
            if expr.is_empty() {
                continue;
            }
            lists[*col].push((*op, expr));
        }
        let context = context_json(columns, &lists, plan.cols_used);
        let rows = self
            .backend
            .table
            .generate_from_json(Some(&context))
            .map_err(|e| Error::ModuleError(format!("{e:#}")))?;
        self.backend.calls.lock().unwrap().push(GenerateCall {
            context,
            rows: rows.len(),
        });
        self.rows = rows;
        self.pos = 0;
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        self.pos += 1;
        Ok(())
    }

    fn eof(&self) -> bool {
        self.pos >= self.rows.len()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> Result<()> {
        let columns = self.backend.columns();
        let col = usize::try_from(i)
            .ok()
            .and_then(|i| columns.get(i))
            .ok_or_else(|| Error::ModuleError(format!("no column {i}")))?;
        let row = &self.rows[self.pos];
        ctx.set_result(sql_value(col.ty, row.get(col.name).map(String::as_str)))
    }

    fn rowid(&self) -> Result<i64> {
        Ok(i64::try_from(self.pos).unwrap_or(i64::MAX))
    }
}

#[test]
fn base0_numbers_follow_c_rules() {
    assert_eq!(parse_base0("42"), Some(42));
    assert_eq!(parse_base0("-7"), Some(-7));
    assert_eq!(parse_base0("0"), Some(0));
    assert_eq!(parse_base0("010"), Some(8));
    assert_eq!(parse_base0("0x1f"), Some(31));
    assert_eq!(parse_base0(""), None);
    assert_eq!(parse_base0("12a"), None);
    assert_eq!(parse_base0("--1"), None);
    assert_eq!(parse_base0("09"), None);
    assert_eq!(parse_base0("0x"), None);
    assert_eq!(sql_value(ColumnType::BigInt, Some("")), Value::Null);
    assert_eq!(sql_value(ColumnType::BigInt, None), Value::Null);
    assert_eq!(
        sql_value(ColumnType::Text, Some("")),
        Value::Text(String::new())
    );
    assert_eq!(
        sql_value(ColumnType::Integer, Some("4294967297")),
        Value::Integer(1)
    );
}

#[test]
fn plan_round_trips_through_idx_str() {
    let plan = Plan {
        cols_used: 5,
        constraints: vec![(0, 32), (2, 2)],
    };
    assert_eq!(Plan::decode(&plan.encode()).unwrap(), plan);
    assert_eq!(Plan::decode("0;").unwrap(), Plan::default());
    assert!(Plan::decode("x").is_err());
}
