//! A row of `kerberos_cache_access`: an exec event plus its classification,
//! converted to text once and then frozen.
//!
//! Rows never change after they are made: osquery's differential logging
//! reports a row again whenever any of its bytes change.

use crate::classify::Classification;
use crate::event::ExecEvent;
use crate::schema::{opt_int, Value, EXEC_COLUMNS};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub time: i64,
    pub eid: String,
    pub pid: i64,
    pub parent: i64,
    pub path: String,
    pub name: String,
    pub cmdline: String,
    pub args: String,
    pub cwd: String,
    pub uid: Option<i64>,
    pub euid: Option<i64>,
    pub gid: Option<i64>,
    pub egid: Option<i64>,
    pub auid: Option<i64>,
    pub username: String,
    pub parent_path: String,
    pub parent_cmdline: String,
    pub tool: String,
    pub action: String,
    pub ccache: String,
    pub indicator: String,
    pub technique: String,
    pub signing_id: String,
    pub team_id: String,
    pub platform_binary: Option<i64>,
    pub sha256: String,
    pub source: String,
}

/// Bytes as text: valid UTF-8 is kept, every byte of an invalid sequence is
/// written as `\xNN`, so the result is valid UTF-8 (and JSON) and the
/// original bytes can be read back.
pub fn bytes_to_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// argv joined by single spaces.
pub fn cmdline_of(argv: &[Vec<u8>]) -> String {
    argv.iter()
        .map(|a| bytes_to_text(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// argv as a JSON array of strings.
pub fn args_json(argv: &[Vec<u8>]) -> String {
    let texts: Vec<String> = argv.iter().map(|a| bytes_to_text(a)).collect();
    serde_json::Value::from(texts).to_string()
}

/// A stable id for one execution: the same event always gets the same id, on
/// every query and across restarts, and two execs differ in at least one of
/// these fields (an exec without fork keeps pid and start time, but changes
/// path or argv).
pub fn event_id(event: &ExecEvent) -> String {
    // FNV-1a: tiny, stable across Rust versions and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    feed(&event.path);
    for a in &event.argv {
        feed(a);
    }
    feed(&event.discriminator.to_le_bytes());
    format!(
        "{}-{}.{:09}-{:016x}",
        event.pid, event.time, event.time_nanos, h
    )
}

impl Row {
    pub fn from_event(event: &ExecEvent, class: &Classification, username: String) -> Row {
        Row {
            time: event.time,
            eid: event_id(event),
            pid: event.pid,
            parent: event.ppid,
            path: bytes_to_text(&event.path),
            name: bytes_to_text(crate::classify::basename(&event.path)),
            cmdline: cmdline_of(&event.argv),
            args: args_json(&event.argv),
            cwd: event.cwd.as_deref().map(bytes_to_text).unwrap_or_default(),
            uid: event.uid,
            euid: event.euid,
            gid: event.gid,
            egid: event.egid,
            auid: event.auid,
            username,
            parent_path: event
                .parent_path
                .as_deref()
                .map(bytes_to_text)
                .unwrap_or_default(),
            parent_cmdline: event
                .parent_argv
                .as_deref()
                .map(cmdline_of)
                .unwrap_or_default(),
            tool: class.tool.to_string(),
            action: class.action.to_string(),
            ccache: class.ccache.clone(),
            indicator: class.indicator.clone(),
            technique: class.technique.clone(),
            signing_id: event.code.signing_id.clone(),
            team_id: event.code.team_id.clone(),
            platform_binary: event.code.platform_binary.map(i64::from),
            sha256: event.code.sha256.clone(),
            source: event.source.as_str().to_string(),
        }
    }

    /// The cells in `EXEC_COLUMNS` order.
    pub fn values(&self) -> [Value<'_>; EXEC_COLUMNS.len()] {
        [
            Value::Int(self.time),
            Value::Text(&self.eid),
            Value::Int(self.pid),
            Value::Int(self.parent),
            Value::Text(&self.path),
            Value::Text(&self.name),
            Value::Text(&self.cmdline),
            Value::Text(&self.args),
            Value::Text(&self.cwd),
            opt_int(self.uid),
            opt_int(self.euid),
            opt_int(self.gid),
            opt_int(self.egid),
            opt_int(self.auid),
            Value::Text(&self.username),
            Value::Text(&self.parent_path),
            Value::Text(&self.parent_cmdline),
            Value::Text(&self.tool),
            Value::Text(&self.action),
            Value::Text(&self.ccache),
            Value::Text(&self.indicator),
            Value::Text(&self.technique),
            Value::Text(&self.signing_id),
            Value::Text(&self.team_id),
            opt_int(self.platform_binary),
            Value::Text(&self.sha256),
            Value::Text(&self.source),
        ]
    }

    /// One JSON object keyed by column name, in schema order (the
    /// `--standalone` output).
    pub fn to_json(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = EXEC_COLUMNS
            .iter()
            .zip(self.values())
            .map(|(c, v)| (c.name.to_string(), v.to_json()))
            .collect();
        serde_json::Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;

    #[test]
    fn invalid_utf8_is_escaped_and_recoverable() {
        assert_eq!(bytes_to_text(b"plain"), "plain");
        assert_eq!(bytes_to_text("é".as_bytes()), "é");
        assert_eq!(bytes_to_text(b"a\xffb\xc3"), "a\\xffb\\xc3");
    }

    #[test]
    fn args_is_a_json_array_even_with_hostile_bytes() {
        let argv = vec![b"kcc".to_vec(), b"a \"q\" \\ \n".to_vec(), b"\x80".to_vec()];
        let parsed: Vec<String> = serde_json::from_str(&args_json(&argv)).unwrap();
        assert_eq!(parsed, vec!["kcc", "a \"q\" \\ \n", "\\x80"]);
        assert_eq!(cmdline_of(&argv), "kcc a \"q\" \\ \n \\x80");
    }

    fn event(pid: i64, argv: &[&str]) -> ExecEvent {
        ExecEvent {
            time: 1_700_000_000,
            pid,
            ppid: 1,
            path: b"/tmp/kcc".to_vec(),
            argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
            ..ExecEvent::default()
        }
    }

    #[test]
    fn event_id_is_stable_and_distinguishes_execs() {
        let a = event(42, &["kcc", "copy_cred_cache"]);
        assert_eq!(event_id(&a), event_id(&a.clone()));
        let b = event(42, &["kcc", "list"]);
        assert_ne!(event_id(&a), event_id(&b));
        assert_ne!(
            event_id(&a),
            event_id(&event(43, &["kcc", "copy_cred_cache"]))
        );
        let split = event(42, &["kcc", "copy_", "cred_cache"]);
        let joined = event(42, &["kcc", "copy_cred_cache"]);
        assert_ne!(event_id(&split), event_id(&joined));
    }

    #[test]
    fn row_values_follow_the_schema() {
        let e = event(7, &["kcc", "copy_cred_cache"]);
        let c = classify(&e.path, &e.argv).unwrap();
        let row = Row::from_event(&e, &c, "root".into());
        let json = row.to_json();
        assert_eq!(json["name"], "kcc");
        assert_eq!(json["pid"], 7);
        assert_eq!(json["uid"], serde_json::Value::Null);
        assert_eq!(json["args"], "[\"kcc\",\"copy_cred_cache\"]");
        assert_eq!(json["indicator"], "credential_cache_copy");
        assert_eq!(json["source"], "snapshot");
        assert_eq!(json.as_object().unwrap().len(), EXEC_COLUMNS.len());
    }
}
