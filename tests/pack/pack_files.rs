//! The shipped pack files, read the way their consumers read them: the
//! osquery pack as JSON, the Fleet files with a deliberately small YAML reader.
//!
//! The YAML reader knows only what the Fleet files use: `---` documents,
//! comments, `key: value` mappings, `- ` list items, plain scalars, quoted
//! scalars without escapes and folded block scalars (`>-`). Anything else makes
//! it panic, so a file it cannot read exactly fails the tests instead of being
//! misread.

use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const CONF: &str = "packs/kerberos_cache_access.conf";
pub const FLEET_APPLY: &str = "packs/fleet/kerberos_cache_access.yml";
pub const FLEET_GITOPS: &str = "packs/fleet/gitops-reports.yml";
pub const README: &str = "packs/README.md";
pub const FLEET_POLICIES: &str = "packs/fleet/policies.yml";

pub const DETECTION: &str = "kerberos_cached_credentials_dumping";
pub const HARDENED: &str = "kerberos_credential_access_hardened";
pub const HEALTH: &str = "kerberos_cache_access_health";

pub fn read(relative: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), relative].iter().collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The osquery pack, parsed as osqueryd's filesystem config plugin would.
pub fn conf() -> Json {
    serde_json::from_str(&read(CONF)).expect("the pack is valid JSON")
}

/// The SQL of one query of the osquery pack.
pub fn conf_query(name: &str) -> String {
    conf()["queries"][name]["query"]
        .as_str()
        .unwrap_or_else(|| panic!("no query {name} in {CONF}"))
        .to_string()
}

/// The pack's discovery queries.
pub fn discovery() -> Vec<String> {
    conf()["discovery"]
        .as_array()
        .expect("discovery is a list")
        .iter()
        .map(|q| q.as_str().expect("discovery query is a string").to_string())
        .collect()
}

/// A mapping of scalar keys to their (unquoted, unfolded) values.
pub type Fields = BTreeMap<String, String>;

/// One `---` document: its top-level scalar keys, and every mapping that has a
/// `name` key (a Fleet `spec:` or a list entry), with its sibling keys.
#[derive(Debug, Default)]
pub struct Document {
    pub top: Fields,
    pub named: Vec<Fields>,
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn scalar(raw: &str, where_: &str) -> String {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .unwrap_or_else(|| panic!("{where_}: unterminated \""));
        assert!(
            !inner.contains(['"', '\\']),
            "{where_}: escapes in double quotes are not supported"
        );
        return inner.to_string();
    }
    if let Some(inner) = raw.strip_prefix('\'') {
        let inner = inner
            .strip_suffix('\'')
            .unwrap_or_else(|| panic!("{where_}: unterminated '"));
        return inner.replace("''", "'");
    }
    assert!(
        !raw.contains(" #") && !raw.starts_with(['|', '>', '&', '*', '!', '{', '[']),
        "{where_}: unsupported scalar {raw:?}"
    );
    raw.to_string()
}

/// Reads a Fleet YAML file into documents.
pub fn yaml_documents(text: &str) -> Vec<Document> {
    let lines: Vec<&str> = text.lines().collect();
    let mut docs = vec![Document::default()];
    // The open `name` mapping: its indentation and fields.
    let mut open: Option<(usize, Fields)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let where_ = format!("line {}", i + 1);
        i += 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        assert!(!line.contains('\t'), "{where_}: tab");
        if line == "---" {
            let doc = docs.last_mut().expect("a document");
            doc.named.extend(open.take().map(|(_, f)| f));
            docs.push(Document::default());
            continue;
        }
        let mut indent = indent_of(line);
        let mut body = &line[indent..];
        let mut item = false;
        if let Some(rest) = body.strip_prefix("- ") {
            indent += 2;
            body = rest;
            item = true;
        }
        let (key, rest) = body
            .split_once(':')
            .unwrap_or_else(|| panic!("{where_}: not a key: {line:?}"));
        assert!(
            rest.is_empty() || rest.starts_with(' '),
            "{where_}: unsupported key syntax {line:?}"
        );
        let rest = rest.trim();
        let value = if rest == ">-" {
            // Folded block: the following more-indented lines, joined by
            // single spaces. Lines indented further than the first would keep
            // their line breaks in YAML, and blank lines would become breaks:
            // neither is supported.
            let mut parts: Vec<&str> = Vec::new();
            let mut block_indent = None;
            while i < lines.len() {
                let l = lines[i];
                if l.trim().is_empty() {
                    // Fine after the block, not inside it.
                    let inside = lines[i..]
                        .iter()
                        .find(|l| !l.trim().is_empty())
                        .is_some_and(|l| indent_of(l) > indent);
                    assert!(!inside, "line {}: blank line in a folded block", i + 1);
                    break;
                }
                if indent_of(l) <= indent {
                    break;
                }
                let n = *block_indent.get_or_insert(indent_of(l));
                assert_eq!(indent_of(l), n, "line {}: uneven folded block", i + 1);
                assert_eq!(l.trim_end(), l, "line {}: trailing spaces", i + 1);
                parts.push(&l[n..]);
                i += 1;
            }
            assert!(!parts.is_empty(), "{where_}: empty folded block");
            Some(parts.join(" "))
        } else if rest.is_empty() {
            None // a nested mapping follows
        } else {
            Some(scalar(rest, &where_))
        };
        if key == "name" || item {
            let doc = docs.last_mut().expect("a document");
            doc.named.extend(open.take().map(|(_, f)| f));
            open = Some((indent, Fields::new()));
        }
        match (&mut open, value) {
            (Some((open_indent, fields)), Some(v)) if *open_indent == indent => {
                assert!(
                    fields.insert(key.to_string(), v).is_none(),
                    "{where_}: duplicate key {key}"
                );
            }
            (_, Some(v)) if indent == 0 => {
                docs.last_mut()
                    .expect("a document")
                    .top
                    .insert(key.to_string(), v);
            }
            _ => {}
        }
    }
    let doc = docs.last_mut().expect("a document");
    doc.named.extend(open.take().map(|(_, f)| f));
    docs.retain(|d| !d.top.is_empty() || !d.named.is_empty());
    docs
}

/// The entry called `name` among all documents of a Fleet file.
pub fn fleet_entry(file: &str, name: &str) -> Fields {
    let mut found: Vec<Fields> = yaml_documents(&read(file))
        .into_iter()
        .flat_map(|d| d.named)
        .filter(|f| f.get("name").map(String::as_str) == Some(name))
        .collect();
    assert_eq!(found.len(), 1, "{file}: expected one entry named {name}");
    found.pop().expect("one entry")
}

#[test]
fn yaml_reader_handles_what_fleet_files_use() {
    let text = "# c\n---\napiVersion: v1\nkind: query\nspec:\n  name: a\n  query: >-\n    SELECT 1\n    FROM t;\n  interval: 300 \n  quoted: \"x: y\"\n  single: 'it''s'\n---\n- name: b\n  platform: darwin,linux\n- name: c\n";
    let docs = yaml_documents(text);
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].top["apiVersion"], "v1");
    assert_eq!(docs[0].top["kind"], "query");
    let a = &docs[0].named[0];
    assert_eq!(a["query"], "SELECT 1 FROM t;");
    assert_eq!(a["interval"], "300");
    assert_eq!(a["quoted"], "x: y");
    assert_eq!(a["single"], "it's");
    assert_eq!(docs[1].named.len(), 2);
    assert_eq!(docs[1].named[0]["platform"], "darwin,linux");
    assert_eq!(docs[1].named[1]["name"], "c");
}

#[test]
#[should_panic(expected = "uneven folded block")]
fn yaml_reader_rejects_a_fold_it_would_misread() {
    yaml_documents("- name: a\n  query: >-\n    SELECT 1\n      FROM t;\n");
}
