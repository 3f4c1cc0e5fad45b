//! Tickets replayed through `KRB5CCNAME`: the link from an exec's cache to
//! an earlier theft, and a limit on how often one replay is reported.
//!
//! A stolen cache is used by pointing `KRB5CCNAME` at it and running any
//! Kerberos-aware program (smbclient, ssh, impacket with `-k`). The
//! classifier flags a `KRB5CCNAME` that names another user's cache or a
//! world-writable directory; this module finds the third case, a cache that
//! an earlier `credential_cache_copy` or `ccache_file_access` row named (its
//! destination, or any path argument of a `cp`). It looks at the rows in the
//! store, so the link holds across a restart (the store is read back from
//! the journal) and ends when the row leaves the store.

use crate::ccname;
use crate::classify::Indicator;
use crate::row::Row;
use std::collections::VecDeque;

/// Indicators whose rows name a cache that was copied or read.
const THEFT: &[Indicator] = &[
    Indicator::CredentialCacheCopy,
    Indicator::CcacheFileAccess,
    Indicator::ForeignCcacheAccess,
];

/// `path` made absolute against `cwd` when it is relative and `cwd` is
/// known; `None` when it stays relative (it cannot be compared).
fn absolute(path: &[u8], cwd: &[u8]) -> Option<Vec<u8>> {
    if path.starts_with(b"/") {
        return Some(path.to_vec());
    }
    if !cwd.starts_with(b"/") {
        return None;
    }
    let mut out = cwd.to_vec();
    if !out.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(path.strip_prefix(b"./").unwrap_or(path));
    Some(out)
}

/// The absolute file a `KRB5CCNAME` names (a bare path or `FILE:`/`DIR:`),
/// relative names resolved against the exec's working directory.
pub(crate) fn replay_target(krb5ccname: &[u8], cwd: Option<&[u8]>) -> Option<Vec<u8>> {
    absolute(ccname::cache_path(krb5ccname)?, cwd.unwrap_or_default())
}

/// Whether a stored row is a theft whose cache or path arguments name the
/// file `target` (absolute).
pub(crate) fn row_names(row: &Row, target: &[u8]) -> bool {
    let indicators = row.indicators();
    let theft = THEFT.iter().any(|&t| indicators.contains(t));
    if !theft || target.is_empty() {
        return false;
    }
    let cwd = row.cwd.as_bytes();
    let names = |candidate: &[u8]| {
        ccname::cache_path(candidate)
            .and_then(|p| absolute(p, cwd))
            .is_some_and(|p| p == target)
    };
    if names(row.ccache.as_bytes()) {
        return true;
    }
    // The file name must appear in the stored argv before it is parsed.
    let file = crate::classify::basename(target);
    let Ok(file) = std::str::from_utf8(file) else {
        return false;
    };
    if file.is_empty() || !row.args.contains(file) {
        return false;
    }
    let Ok(args) = serde_json::from_str::<Vec<String>>(&row.args) else {
        return false;
    };
    args.iter().skip(1).any(|a| names(a.as_bytes()))
}

/// Reports a replay-only row once per user and `KRB5CCNAME` value per
/// window: a shell with a stolen cache exported makes every command it runs
/// a replay, and one row per command would crowd real detections out of the
/// store. Bounded; the oldest keys are forgotten first.
#[derive(Debug)]
pub(crate) struct ReplayLimiter {
    window: i64,
    capacity: usize,
    seen: VecDeque<(u64, i64)>,
}

impl Default for ReplayLimiter {
    fn default() -> Self {
        ReplayLimiter::new(ReplayLimiter::DEFAULT_WINDOW_SECS, 1024)
    }
}

impl ReplayLimiter {
    pub(crate) const DEFAULT_WINDOW_SECS: i64 = 600;

    pub(crate) fn new(window_secs: i64, capacity: usize) -> ReplayLimiter {
        ReplayLimiter {
            window: window_secs.max(0),
            capacity: capacity.max(1),
            seen: VecDeque::new(),
        }
    }

    /// Whether a replay of `krb5ccname` by `uid` at `time` is the first in
    /// its window (and so worth a row).
    pub(crate) fn first(&mut self, uid: Option<i64>, krb5ccname: &[u8], time: i64) -> bool {
        // FNV-1a: fixed size whatever the value's length.
        let mut h = crate::hash::Fnv1a::new();
        h.write(&uid.unwrap_or(-1).to_le_bytes());
        h.write(krb5ccname);
        let h = h.finish();
        let window = self.window;
        self.seen.retain(|&(_, t)| time.saturating_sub(t) <= window);
        if self.seen.iter().any(|&(k, _)| k == h) {
            return false;
        }
        if self.seen.len() >= self.capacity {
            self.seen.pop_front();
        }
        self.seen.push_back((h, time));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Classification;
    use crate::event::{ExecEvent, SourceKind};

    /// The row an exec of `args` in `cwd` gets, with these columns.
    fn row(indicator: &str, ccache: &str, args: &[&str], cwd: &str) -> Row {
        let event = ExecEvent {
            argv: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            cwd: Some(cwd.as_bytes().to_vec()),
            source: SourceKind::Eslogger,
            ..ExecEvent::default()
        };
        Row {
            indicator: indicator.into(),
            ccache: ccache.into(),
            ..Row::from_event(&event, &Classification::default(), String::new())
        }
    }

    #[test]
    fn a_copy_destination_or_argument_is_linked() {
        let kcc = row(
            "credential_cache_copy",
            "FILE:/Users/eve/t.cc",
            &["kcc", "copy_cred_cache", "/Users/eve/t.cc"],
            "/",
        );
        assert!(row_names(&kcc, b"/Users/eve/t.cc"));
        assert!(!row_names(&kcc, b"/Users/eve/other"));
        let cp = row(
            "foreign_ccache_access",
            "FILE:/tmp/krb5cc_501",
            &["cp", "/tmp/krb5cc_501", "stolen"],
            "/Users/eve",
        );
        assert!(row_names(&cp, b"/Users/eve/stolen"));
        assert!(row_names(&cp, b"/tmp/krb5cc_501"));
        // A benign or unrelated detection names nothing.
        let benign = row("", "FILE:/Users/eve/t.cc", &["klist"], "/");
        assert!(!row_names(&benign, b"/Users/eve/t.cc"));
        let other = row("kerberoasting", "FILE:/Users/eve/t.cc", &["kvno"], "/");
        assert!(!row_names(&other, b"/Users/eve/t.cc"));
    }

    #[test]
    fn targets_are_absolute() {
        assert_eq!(
            replay_target(b"FILE:stolen", Some(b"/Users/eve")),
            Some(b"/Users/eve/stolen".to_vec())
        );
        assert_eq!(replay_target(b"./x", Some(b"/a/")), Some(b"/a/x".to_vec()));
        assert_eq!(replay_target(b"x", None), None);
        assert_eq!(replay_target(b"API:123", Some(b"/")), None);
    }

    #[test]
    fn one_replay_row_per_window() {
        let mut l = ReplayLimiter::new(600, 2);
        assert!(l.first(Some(501), b"/tmp/x", 100));
        assert!(!l.first(Some(501), b"/tmp/x", 200));
        assert!(l.first(Some(502), b"/tmp/x", 200), "another user");
        assert!(l.first(Some(501), b"/tmp/x", 701), "window over");
        // Bounded: the oldest key goes first.
        assert!(l.first(Some(1), b"a", 800));
        assert!(l.first(Some(2), b"b", 800));
        assert!(l.first(Some(3), b"c", 800));
        assert!(l.first(Some(1), b"a", 801));
    }
}
