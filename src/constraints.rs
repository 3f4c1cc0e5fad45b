//! osquery's query `context`: the constraints and used columns that osqueryd
//! sends with every generate call.
//!
//! osqueryd re-applies every WHERE term to what we return, so constraints are
//! only used to skip work: whatever cannot be understood is ignored, which can
//! only make us return more rows, never fewer.

use crate::schema::Column;
use serde_json::Value as Json;

/// Why osqueryd's `context` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The context is not JSON (serde_json's message).
    #[error("context is not valid JSON: {0}")]
    NotJson(serde_json::Error),
    /// The context is JSON, but not an object.
    #[error("context is not a JSON object")]
    NotAnObject,
    /// `constraints` is there but not a list.
    #[error("context.constraints is not an array")]
    ConstraintsNotAnArray,
    /// `colsUsed` names a column with something else than a string.
    #[error("context.colsUsed holds a non-string")]
    ColsUsedNotAString,
    /// `colsUsed` is there but not a list.
    #[error("context.colsUsed is not an array")]
    ColsUsedNotAnArray,
    /// A constraint entry does not say which column it is on.
    #[error("a constraint entry has no string \"name\"")]
    NoName,
    /// A legacy list-as-a-string that is not JSON.
    #[error("constraint list of {name}: {err}")]
    ListNotJson {
        /// The column the list is for.
        name: String,
        /// serde_json's complaint about the list string.
        err: serde_json::Error,
    },
    /// The constraints on a column are not a list.
    #[error("the constraint list of {name} is not an array")]
    ListNotAnArray {
        /// The column the list is for.
        name: String,
    },
    /// An operator that is a number, but not an integer.
    #[error("constraint op on {name} is not an integer: {op}")]
    OpNotAnInteger {
        /// The column the constraint is on.
        name: String,
        /// The operator as sent.
        op: serde_json::Number,
    },
    /// An operator sent as a string that is not a number.
    #[error("constraint op on {name} is not a number: {op:?}: {err}")]
    OpNotANumber {
        /// The column the constraint is on.
        name: String,
        /// The operator string as sent.
        op: String,
        /// Why it did not parse as an integer.
        err: std::num::ParseIntError,
    },
    /// A constraint without an operator.
    #[error("a constraint on {name} has no numeric \"op\"")]
    NoOp {
        /// The column the constraint is on.
        name: String,
    },
    /// A constraint without a value.
    #[error("a constraint on {name} has no string \"expr\"")]
    NoExpr {
        /// The column the constraint is on.
        name: String,
    },
}

type Result<T, E = ContextError> = std::result::Result<T, E>;

/// SQLite's constraint operators as osqueryd forwards them (raw
/// `sqlite3_index_info` op codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=` (`SQLITE_INDEX_CONSTRAINT_EQ`, 2); several on one column are
    /// alternatives (see [`QueryContext::int_equals`]).
    Eq,
    /// `>` (`SQLITE_INDEX_CONSTRAINT_GT`, 4).
    Gt,
    /// `<=` (`SQLITE_INDEX_CONSTRAINT_LE`, 8).
    Le,
    /// `<` (`SQLITE_INDEX_CONSTRAINT_LT`, 16).
    Lt,
    /// `>=` (`SQLITE_INDEX_CONSTRAINT_GE`, 32).
    Ge,
    /// `LIKE` (`SQLITE_INDEX_CONSTRAINT_LIKE`, 65); never used to skip work.
    Like,
    /// `GLOB` (`SQLITE_INDEX_CONSTRAINT_GLOB`, 66); never used to skip work.
    Glob,
    /// `REGEXP` (`SQLITE_INDEX_CONSTRAINT_REGEXP`, 67); never used to skip
    /// work.
    Regexp,
    /// Any other code (MATCH, NE, IS, LIMIT, …): tolerated and ignored.
    Other(i64),
}

impl Op {
    pub(crate) fn from_code(code: i64) -> Op {
        match code {
            2 => Op::Eq,
            4 => Op::Gt,
            8 => Op::Le,
            16 => Op::Lt,
            32 => Op::Ge,
            65 => Op::Like,
            66 => Op::Glob,
            67 => Op::Regexp,
            other => Op::Other(other),
        }
    }

    /// The raw `sqlite3_index_info` op code, as osqueryd sends it.
    pub fn code(self) -> i64 {
        match self {
            Op::Eq => 2,
            Op::Gt => 4,
            Op::Le => 8,
            Op::Lt => 16,
            Op::Ge => 32,
            Op::Like => 65,
            Op::Glob => 66,
            Op::Regexp => 67,
            Op::Other(c) => c,
        }
    }
}

/// One WHERE term osqueryd pushed down: `column op expr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// The column the term is on.
    pub column: String,
    /// The comparison.
    pub op: Op,
    /// The right-hand side, always as text (osqueryd sends strings even for
    /// integer columns).
    pub expr: String,
}

/// The parsed context of one generate call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryContext {
    /// Every pushed-down constraint, in the order osqueryd sent them.
    pub constraints: Vec<Constraint>,
    /// Names of the columns the query reads; `None` when osqueryd did not say,
    /// in which case every column is produced.
    pub cols_used: Option<Vec<String>>,
}

/// An inclusive range of integers; `None` bounds are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IntRange {
    /// Smallest accepted value; `None` for no lower bound.
    pub min: Option<i64>,
    /// Largest accepted value; `None` for no upper bound.
    pub max: Option<i64>,
}

impl IntRange {
    /// Whether `v` lies within both bounds.
    pub fn contains(&self, v: i64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }

    fn raise_min(&mut self, v: i64) {
        self.min = Some(self.min.map_or(v, |m| m.max(v)));
    }

    fn lower_max(&mut self, v: i64) {
        self.max = Some(self.max.map_or(v, |m| m.min(v)));
    }
}

/// Parses an integer constraint value the way SQLite would compare it. Floats
/// are accepted and rounded outward by the caller; anything else is `None`.
fn parse_number(expr: &str) -> Option<f64> {
    let t = expr.trim();
    if let Ok(i) = t.parse::<i64>() {
        // Exact for the magnitudes that matter (times, pids).
        #[allow(clippy::cast_precision_loss)]
        return Some(i as f64);
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

#[allow(clippy::cast_possible_truncation)]
fn to_i64(f: f64) -> i64 {
    // `as` saturates, which is the conservative direction for bounds.
    f as i64
}

impl QueryContext {
    /// Parses the JSON string osqueryd sends as `context`. Tolerates the
    /// legacy encodings (list as a string, op as a string) and unknown keys.
    pub fn parse(text: &str) -> Result<QueryContext> {
        let root: Json = serde_json::from_str(text).map_err(ContextError::NotJson)?;
        let obj = root.as_object().ok_or(ContextError::NotAnObject)?;
        let mut ctx = QueryContext::default();

        match obj.get("constraints") {
            None | Some(Json::Null) => {}
            Some(Json::Array(entries)) => {
                for entry in entries {
                    parse_entry(entry, &mut ctx.constraints)?;
                }
            }
            Some(_) => return Err(ContextError::ConstraintsNotAnArray),
        }

        match obj.get("colsUsed") {
            None | Some(Json::Null) => {}
            Some(Json::Array(cols)) => {
                let names = cols
                    .iter()
                    .map(|c| {
                        c.as_str()
                            .map(str::to_string)
                            .ok_or(ContextError::ColsUsedNotAString)
                    })
                    .collect::<Result<Vec<_>>>()?;
                ctx.cols_used = Some(names);
            }
            Some(_) => return Err(ContextError::ColsUsedNotAnArray),
        }
        Ok(ctx)
    }

    /// The constraints on `column` with an operator osquery can push down.
    pub fn on<'a>(&'a self, column: &'a str) -> impl Iterator<Item = &'a Constraint> + 'a {
        self.constraints.iter().filter(move |c| c.column == column)
    }

    /// The range of `column` values the query can possibly accept, from its
    /// =, >, >=, <, <= constraints. Unparseable values are ignored.
    pub fn int_range(&self, column: &str) -> IntRange {
        let mut r = IntRange::default();
        for c in self.on(column) {
            let Some(v) = parse_number(&c.expr) else {
                continue;
            };
            match c.op {
                Op::Eq => {
                    r.raise_min(to_i64(v.ceil()));
                    r.lower_max(to_i64(v.floor()));
                }
                Op::Gt => r.raise_min(to_i64(v.floor()).saturating_add(1)),
                Op::Ge => r.raise_min(to_i64(v.ceil())),
                Op::Lt => r.lower_max(to_i64(v.ceil()).saturating_sub(1)),
                Op::Le => r.lower_max(to_i64(v.floor())),
                _ => {}
            }
        }
        r
    }

    /// The values `column` is compared to with `=`, if there is at least one
    /// such constraint and all of them are integers. Several `=` constraints
    /// are treated as alternatives (that is how osquery ≥ 5.14 expands IN on
    /// OPTIMIZED columns); for a plain AND this only returns more rows.
    pub fn int_equals(&self, column: &str) -> Option<Vec<i64>> {
        let mut out = Vec::new();
        for c in self.on(column).filter(|c| c.op == Op::Eq) {
            let v = c.expr.trim().parse::<i64>().ok()?;
            out.push(v);
        }
        (!out.is_empty()).then_some(out)
    }

    /// Which of `columns` the query uses; all of them when osqueryd did not
    /// say. `SELECT count(*)` uses none.
    pub(crate) fn used_mask(&self, columns: &[Column]) -> Vec<bool> {
        match &self.cols_used {
            None => vec![true; columns.len()],
            Some(used) => columns
                .iter()
                .map(|c| used.iter().any(|u| u == c.name))
                .collect(),
        }
    }
}

fn parse_entry(entry: &Json, out: &mut Vec<Constraint>) -> Result<()> {
    let name = entry
        .get("name")
        .and_then(Json::as_str)
        .ok_or(ContextError::NoName)?;
    let list = match entry.get("list") {
        None | Some(Json::Null) => return Ok(()),
        // Pre-3.0 osquery sent an empty list as "".
        Some(Json::String(s)) if s.trim().is_empty() => return Ok(()),
        Some(Json::String(s)) => {
            serde_json::from_str::<Json>(s).map_err(|err| ContextError::ListNotJson {
                name: name.to_string(),
                err,
            })?
        }
        Some(other) => other.clone(),
    };
    let items = list
        .as_array()
        .ok_or_else(|| ContextError::ListNotAnArray {
            name: name.to_string(),
        })?;
    for item in items {
        let op = match item.get("op") {
            Some(Json::Number(n)) => n.as_i64().ok_or_else(|| ContextError::OpNotAnInteger {
                name: name.to_string(),
                op: n.clone(),
            })?,
            Some(Json::String(s)) => {
                s.trim()
                    .parse::<i64>()
                    .map_err(|err| ContextError::OpNotANumber {
                        name: name.to_string(),
                        op: s.clone(),
                        err,
                    })?
            }
            _ => {
                return Err(ContextError::NoOp {
                    name: name.to_string(),
                })
            }
        };
        let expr = match item.get("expr") {
            Some(Json::String(s)) => s.clone(),
            // osqueryd always sends a string; tolerate a bare number.
            Some(Json::Number(n)) => n.to_string(),
            _ => {
                return Err(ContextError::NoExpr {
                    name: name.to_string(),
                })
            }
        };
        out.push(Constraint {
            column: name.to_string(),
            op: Op::from_code(op),
            expr,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::EXEC_COLUMNS;

    const SAMPLE: &str = r#"{"constraints":[{"name":"cmdline","list":[{"op":65,"expr":"%copy_cred_cache%"}],"affinity":"TEXT"},{"name":"path","list":[],"affinity":"TEXT"},{"name":"pid","list":[],"affinity":"BIGINT"},{"name":"time","list":[{"op":4,"expr":"1700000000"}],"affinity":"BIGINT"}],"colsUsed":["time","pid","path","cmdline"],"colsUsedBitset":15}"#;

    #[test]
    fn parses_osquery_context() {
        let ctx = QueryContext::parse(SAMPLE).unwrap();
        assert_eq!(ctx.constraints.len(), 2);
        assert_eq!(ctx.constraints[0].op, Op::Like);
        let r = ctx.int_range("time");
        assert_eq!(r.min, Some(1_700_000_001));
        assert_eq!(r.max, None);
        assert!(ctx.int_equals("pid").is_none());
        let mask = ctx.used_mask(EXEC_COLUMNS);
        assert_eq!(mask.iter().filter(|b| **b).count(), 4);
    }

    #[test]
    fn ranges_combine_and_round_outward() {
        let ctx = QueryContext::parse(
            r#"{"constraints":[{"name":"time","list":[{"op":32,"expr":"10.5"},{"op":16,"expr":"20"},{"op":8,"expr":"30"},{"op":4,"expr":"abc"}]}]}"#,
        )
        .unwrap();
        let r = ctx.int_range("time");
        assert_eq!((r.min, r.max), (Some(11), Some(19)));
        assert!(r.contains(11) && r.contains(19) && !r.contains(20) && !r.contains(10));
    }

    #[test]
    fn equality_on_pid_and_unknown_ops() {
        let ctx = QueryContext::parse(
            r#"{"constraints":[{"name":"pid","list":[{"op":2,"expr":"42"},{"op":2,"expr":"43"},{"op":150,"expr":"x"},{"op":68,"expr":"1"}]}]}"#,
        )
        .unwrap();
        assert_eq!(ctx.int_equals("pid"), Some(vec![42, 43]));
        assert_eq!(ctx.constraints[2].op, Op::Other(150));
        // A non-integer equality means "could be anything": no pid filter.
        let ctx = QueryContext::parse(
            r#"{"constraints":[{"name":"pid","list":[{"op":2,"expr":"4x"}]}]}"#,
        )
        .unwrap();
        assert_eq!(ctx.int_equals("pid"), None);
    }

    #[test]
    fn legacy_encodings_are_accepted() {
        let ctx = QueryContext::parse(
            r#"{"constraints":[{"name":"pid","list":""},{"name":"time","list":"[{\"op\":\"2\",\"expr\":\"5\"}]"}]}"#,
        )
        .unwrap();
        assert_eq!(ctx.int_range("time").min, Some(5));
        assert!(ctx.cols_used.is_none());
        assert!(ctx.used_mask(EXEC_COLUMNS).iter().all(|b| *b));
    }

    #[test]
    fn count_star_uses_no_columns() {
        let ctx =
            QueryContext::parse(r#"{"constraints":[],"colsUsed":[],"colsUsedBitset":0}"#).unwrap();
        assert!(ctx.used_mask(EXEC_COLUMNS).iter().all(|b| !*b));
    }

    #[test]
    fn malformed_contexts_are_errors_not_panics() {
        for bad in [
            "",
            "[]",
            "{",
            r#"{"constraints":{}}"#,
            r#"{"constraints":[{"list":[]}]}"#,
            r#"{"constraints":[{"name":"time","list":[{"op":"gt","expr":"1"}]}]}"#,
            r#"{"constraints":[{"name":"time","list":[{"op":1.5,"expr":"1"}]}]}"#,
            r#"{"constraints":[{"name":"time","list":[{"op":2}]}]}"#,
            r#"{"constraints":[{"name":"time","list":7}]}"#,
            r#"{"colsUsed":[1]}"#,
        ] {
            assert!(QueryContext::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(s in ".{0,200}") {
            let _ = QueryContext::parse(&s);
        }

        #[test]
        fn range_never_excludes_a_value_the_constraint_accepts(
            v in -1_000_000i64..1_000_000, e in -1_000_000i64..1_000_000, op in 0usize..5
        ) {
            let (code, accepts) = [
                (2, v == e), (4, v > e), (8, v <= e), (16, v < e), (32, v >= e),
            ][op];
            let ctx = QueryContext::parse(&format!(
                r#"{{"constraints":[{{"name":"time","list":[{{"op":{code},"expr":"{e}"}}]}}]}}"#
            )).unwrap();
            if accepts {
                proptest::prop_assert!(ctx.int_range("time").contains(v));
            }
        }
    }
}
