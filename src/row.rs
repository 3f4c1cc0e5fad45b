//! A row of `kerberos_cache_access`: an exec event plus its classification,
//! converted to text once and then frozen.
//!
//! Rows never change after they are made: osquery's differential logging
//! reports a row again whenever any of its bytes change.

use crate::classify::{Classification, IndicatorSet};
use crate::event::{ExecEvent, SourceKind};
use crate::schema::{opt_int, Value, EXEC_COLUMNS};
use crate::text::bytes_to_text;
use serde::{Deserialize, Serialize};

/// One row of `kerberos_cache_access`, one field per column in
/// [`EXEC_COLUMNS`] order (see the README's schema). Text is already valid
/// UTF-8 (invalid bytes written as `\xNN`) and capped to the storage limits;
/// rows are journaled as this struct's JSON, so renaming a field breaks old
/// journals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Exec time, unix seconds; for a snapshot row, the process start time.
    pub time: i64,
    /// Stable unique id of this execution (see `event_id`): the same on
    /// every query and across restarts, computed from the whole exec.
    pub eid: String,
    /// Process id at exec.
    pub pid: i64,
    /// Parent process id at exec.
    pub parent: i64,
    /// Executable path, as the source gave it (possibly audit's `<too_long>`).
    pub path: String,
    /// Basename of `path` (Elastic's `process.name`), or of argv\[0\] when
    /// the source could not give the path.
    pub name: String,
    /// argv joined by single spaces.
    pub cmdline: String,
    /// argv as a JSON array of strings, argv\[0\] first (Elastic's
    /// `json_each(args)` reads it).
    pub args: String,
    /// Working directory at exec; empty when the source does not know it.
    pub cwd: String,
    /// Real user id at exec; `None` (NULL) when the source does not know it.
    pub uid: Option<i64>,
    /// Effective user id at exec; `None` when unknown.
    pub euid: Option<i64>,
    /// Real group id at exec; `None` when unknown.
    pub gid: Option<i64>,
    /// Effective group id at exec; `None` when unknown.
    pub egid: Option<i64>,
    /// Audit (login) user id; `None` when unknown or never set (see
    /// `known_auid`).
    pub auid: Option<i64>,
    /// User name of `uid`, resolved once when the row was made; empty when
    /// it could not be resolved.
    pub username: String,
    /// The parent's executable path at exec time; empty when unknown.
    pub parent_path: String,
    /// The parent's argv joined by spaces, at exec time; empty when unknown.
    pub parent_cmdline: String,
    /// Kerberos tool identity (`kcc`, `klist`, `bifrost`, …), or empty when
    /// the program is no Kerberos tool.
    pub tool: String,
    /// The operation the tool runs, e.g. kcc's resolved sub-command
    /// (`copy_cred_cache`); empty when none.
    pub action: String,
    /// The credential cache named as the target, e.g.
    /// `FILE:/tmp/alice.ccache`; empty when none.
    pub ccache: String,
    /// Detection classes, comma-separated; empty when benign. Parse it with
    /// [`Row::indicators`].
    pub indicator: String,
    /// MITRE ATT&CK ids of the indicators, comma-separated.
    pub technique: String,
    /// Code-signing identifier (macOS sources only); empty when unknown.
    pub signing_id: String,
    /// Code-signing team id (macOS sources only); empty when unknown.
    pub team_id: String,
    /// 1 for an Apple platform binary, 0 if not, `None` when unknown.
    pub platform_binary: Option<i64>,
    /// SHA-256 of the executable, hex, when the source or the renamed-kcc
    /// check computed it; empty otherwise.
    pub sha256: String,
    /// The `source` column; serialized as its name.
    pub source: SourceKind,
    /// 1 when argv, cmdline or a path was cut to the storage caps (the
    /// classification was made on the whole exec), else 0.
    #[serde(default)]
    pub truncated: i64,
}

/// Longest argument or path stored whole; longer ones are cut.
pub(crate) const MAX_STORED_ARG: usize = 4096;
/// Arguments are stored in order until their bytes reach this; after it only
/// the ones that decided the indicator are kept.
pub(crate) const MAX_STORED_ARGV: usize = 16 * 1024;
/// At most this many arguments are stored in order.
pub(crate) const MAX_STORED_ARGS: usize = 256;
/// Arguments past the caps kept because they decided the classification.
const MAX_KEPT_EXTRA: usize = 8;

/// The argv a row stores: argv itself when it fits the caps; otherwise its
/// head (each argument cut to [`MAX_STORED_ARG`], [`MAX_STORED_ARGV`] bytes and
/// [`MAX_STORED_ARGS`] arguments in all), plus the first later argument
/// equal to each credential-cache keyword or to the action (any case),
/// so that a query over `args` (Elastic's `json_each(args)`) still finds
/// `copy_cred_cache` hidden behind a megabyte of padding. Returns the argv
/// and whether anything was cut.
pub(crate) fn stored_argv<'a>(argv: &'a [Vec<u8>], action: &str) -> (Vec<&'a [u8]>, bool) {
    let mut out = Vec::with_capacity(argv.len().min(MAX_STORED_ARGS + MAX_KEPT_EXTRA));
    let mut total = 0usize;
    let mut cut = false;
    for arg in argv {
        if out.len() >= MAX_STORED_ARGS || total >= MAX_STORED_ARGV {
            cut = true;
            break;
        }
        let keep = arg.len().min(MAX_STORED_ARG);
        cut |= keep < arg.len();
        out.push(&arg[..keep]);
        total += keep;
    }
    if !cut {
        return (out, false);
    }
    // The head is full: look for the deciding words in the tail, from the
    // first argument that was not stored whole.
    let skipped = out.len().saturating_sub(1);
    let mut found: Vec<&[u8]> = Vec::new();
    for arg in argv[skipped..].iter() {
        if found.len() >= MAX_KEPT_EXTRA {
            break;
        }
        let deciding = crate::classify::is_cache_keyword(arg)
            || (!action.is_empty() && arg.eq_ignore_ascii_case(action.as_bytes()));
        if deciding
            && arg.len() <= MAX_STORED_ARG
            && !found.iter().any(|f| f.eq_ignore_ascii_case(arg))
        {
            found.push(arg);
        }
    }
    out.extend(found);
    (out, true)
}

/// `text` cut to at most [`MAX_STORED_ARG`] bytes, on a character boundary;
/// sets `cut` when it was longer.
fn capped_text(mut text: String, cut: &mut bool) -> String {
    if text.len() > MAX_STORED_ARG {
        *cut = true;
        let mut end = MAX_STORED_ARG;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.shrink_to_fit();
    }
    text
}

/// `bytes` cut to [`MAX_STORED_ARG`]; sets `cut` when it was longer.
fn capped<'a>(bytes: &'a [u8], cut: &mut bool) -> &'a [u8] {
    if bytes.len() > MAX_STORED_ARG {
        *cut = true;
        &bytes[..MAX_STORED_ARG]
    } else {
        bytes
    }
}

/// The `name` column: the path's file name, or argv\[0\]'s when the source
/// could not give the path (audit's `<too_long>`, none); such a row also
/// carries `unresolved_exe_path` when it is Kerberos-shaped.
fn exec_name<'a>(event: &'a ExecEvent, path: &'a [u8]) -> &'a [u8] {
    if crate::exec_path::is_usable(&event.path) {
        crate::classify::basename(path)
    } else {
        event
            .argv
            .first()
            .map_or(&[][..], |a| crate::classify::basename(a))
    }
}

/// argv joined by single spaces.
pub(crate) fn cmdline_of<A: AsRef<[u8]>>(argv: &[A]) -> String {
    argv.iter()
        .map(|a| bytes_to_text(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// argv as a JSON array of strings.
pub(crate) fn args_json<A: AsRef<[u8]>>(argv: &[A]) -> String {
    let texts: Vec<String> = argv.iter().map(|a| bytes_to_text(a.as_ref())).collect();
    let mut json = serde_json::Value::from(texts).to_string();
    // Rows live long and are never appended to: give back the growth slack.
    json.shrink_to_fit();
    json
}

/// A stable id for one execution: the same event always gets the same id, on
/// every query and across restarts, and two execs differ in at least one of
/// these fields (an exec without fork keeps pid and start time, but changes
/// path or argv).
pub(crate) fn event_id(event: &ExecEvent) -> String {
    // FNV-1a: tiny, stable across Rust versions and platforms.
    let mut h = crate::hash::Fnv1a::new();
    let mut feed = |bytes: &[u8]| {
        h.write(bytes);
        // A separator, so ("ab","c") and ("a","bc") differ.
        h.write(&[0xff]);
    };
    feed(&event.path);
    for a in &event.argv {
        feed(a);
    }
    feed(&event.discriminator.to_le_bytes());
    format!(
        "{}-{}.{:09}-{:016x}",
        event.pid,
        event.time,
        event.time_nanos,
        h.finish()
    )
}

impl Row {
    /// The row for a classified event. The eid and the classification come
    /// from the whole event; what is stored is capped (see `stored_argv`),
    /// so a megabyte argv cannot make a megabyte row.
    pub fn from_event(event: &ExecEvent, class: &Classification, username: String) -> Row {
        let (argv, mut cut) = stored_argv(&event.argv, class.action);
        let path = capped(&event.path, &mut cut);
        let cwd = event.cwd.as_deref().map(|c| capped(c, &mut cut));
        let parent_path = event.parent_path.as_deref().map(|p| capped(p, &mut cut));
        let parent_cmdline = event
            .parent_argv
            .as_deref()
            .map(|a| capped_text(cmdline_of(a), &mut cut));
        let ccache = capped_text(class.ccache.clone(), &mut cut);
        Row {
            time: event.time,
            eid: event_id(event),
            pid: event.pid,
            parent: event.ppid,
            path: bytes_to_text(path),
            name: bytes_to_text(exec_name(event, path)),
            cmdline: cmdline_of(&argv),
            args: args_json(&argv),
            cwd: cwd.map(bytes_to_text).unwrap_or_default(),
            uid: event.uid,
            euid: event.euid,
            gid: event.gid,
            egid: event.egid,
            auid: event.auid,
            username,
            parent_path: parent_path.map(bytes_to_text).unwrap_or_default(),
            parent_cmdline: parent_cmdline.unwrap_or_default(),
            tool: class.tool.to_string(),
            action: class.action.to_string(),
            ccache,
            indicator: class.indicator(),
            technique: class.technique(),
            signing_id: event.code.signing_id.clone(),
            team_id: event.code.team_id.clone(),
            platform_binary: event.code.platform_binary.map(i64::from),
            sha256: event.code.sha256.clone(),
            source: event.source,
            truncated: i64::from(cut),
        }
    }

    /// The indicators the `indicator` column names.
    pub fn indicators(&self) -> IndicatorSet {
        IndicatorSet::from_names(&self.indicator)
    }

    /// What the row costs the store: its struct, its strings' bytes, and the
    /// eid's second copy in the store's index. Used for `--max-bytes`.
    pub(crate) fn footprint(&self) -> usize {
        let texts = [
            &self.eid,
            &self.path,
            &self.name,
            &self.cmdline,
            &self.args,
            &self.cwd,
            &self.username,
            &self.parent_path,
            &self.parent_cmdline,
            &self.tool,
            &self.action,
            &self.ccache,
            &self.indicator,
            &self.technique,
            &self.signing_id,
            &self.team_id,
            &self.sha256,
        ];
        std::mem::size_of::<Row>()
            // Lengths, not capacities: the same row costs the same whether
            // it was just made or read back from the journal.
            + texts.iter().map(|t| t.len()).sum::<usize>()
            + self.eid.len()
            // Arc header, store entry and index slot.
            + 96
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
            Value::Text(self.source.as_str()),
            Value::Int(self.truncated),
        ]
    }

    /// One JSON object keyed by column name, in schema order (the
    /// `--standalone` output).
    pub(crate) fn to_json(&self) -> serde_json::Value {
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
        // Pinned: journals of older versions hold these ids.
        assert_eq!(event_id(&a), "42-1700000000.000000000-5ca20f6c3c2ab4c1");
    }

    #[test]
    fn a_huge_argv_is_capped_but_keeps_what_decided_it() {
        // 1.4 MB of padding before the sub-command Elastic's rule looks for.
        let mut e = event(9, &["kcc"]);
        e.argv
            .extend((0..100_000).map(|i| format!("pad{i:010}").into_bytes()));
        e.argv.push(b"COPY_CRED_CACHE".to_vec());
        e.argv.push(vec![b'a'; 1 << 20]);
        let c = classify(&e.path, &e.argv).unwrap();
        assert_eq!(c.indicator(), "credential_cache_copy");
        let row = Row::from_event(&e, &c, String::new());
        assert_eq!(row.truncated, 1);
        assert!(row.footprint() < 64 * 1024, "{} bytes", row.footprint());
        let args: Vec<String> = serde_json::from_str(&row.args).unwrap();
        assert_eq!(args[0], "kcc");
        assert!(args.len() <= MAX_STORED_ARGS + 8);
        assert!(
            args.iter()
                .any(|a| a.eq_ignore_ascii_case("copy_cred_cache")),
            "the deciding argument is kept"
        );
        // The eid is the whole exec's, not the stored one's.
        assert_eq!(row.eid, event_id(&e));
        // A small argv is stored as it is.
        let small = event(9, &["kcc", "copy_cred_cache"]);
        let row = Row::from_event(&small, &c, String::new());
        assert_eq!(
            (row.truncated, row.args.as_str()),
            (0, "[\"kcc\",\"copy_cred_cache\"]")
        );
    }

    #[test]
    fn long_paths_and_arguments_are_cut_and_marked() {
        let long = vec![b'p'; MAX_STORED_ARG * 3];
        let mut e = event(9, &["kcc", "copy_cred_cache"]);
        e.argv.push(long.clone());
        e.cwd = Some(long.clone());
        let c = classify(&e.path, &e.argv).unwrap();
        assert_eq!(c.ccache.len(), "FILE:".len() + MAX_STORED_ARG * 3);
        let row = Row::from_event(&e, &c, String::new());
        assert_eq!(row.truncated, 1);
        assert_eq!(row.cwd.len(), MAX_STORED_ARG);
        assert_eq!(row.ccache.len(), MAX_STORED_ARG);
        let args: Vec<String> = serde_json::from_str(&row.args).unwrap();
        assert_eq!(args.len(), 3);
        assert_eq!(args[2].len(), MAX_STORED_ARG);
    }

    #[test]
    fn an_unusable_path_takes_its_name_from_argv0() {
        let mut e = event(7, &["/a/b/kcc", "copy_cred_cache"]);
        e.path = b"<too_long>".to_vec();
        let c = classify(&e.path, &e.argv).unwrap();
        let row = Row::from_event(&e, &c, String::new());
        assert_eq!(
            (row.path.as_str(), row.name.as_str()),
            ("<too_long>", "kcc")
        );
        assert_eq!(row.indicator, "credential_cache_copy,unresolved_exe_path");
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
        assert_eq!(row.source, SourceKind::Snapshot);
        assert_eq!(json.as_object().unwrap().len(), EXEC_COLUMNS.len());
    }
}
