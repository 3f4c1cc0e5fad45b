//! Thrift binary protocol pieces for [`crate::plugin::RowStream`]s: a row
//! is a `map<string,string>`, written as a header (key and value type bytes,
//! then the entry count) and length-prefixed strings.

/// Appends a map header for `entries` string-to-string entries.
pub fn map_header(out: &mut Vec<u8>, entries: usize) {
    out.extend_from_slice(&[11, 11]);
    out.extend_from_slice(&clamp(entries).to_be_bytes());
}

/// Appends one string (or binary): its length, big-endian i32, then its
/// bytes. Longer than i32::MAX bytes cannot be sent; such a value is cut (no
/// row comes anywhere near).
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let len = clamp(s.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.get(..len as usize).unwrap_or(s));
}

fn clamp(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use thrift::protocol::{TBinaryInputProtocol, TInputProtocol};

    #[test]
    fn decodes_as_a_thrift_map() {
        let mut b = Vec::new();
        map_header(&mut b, 2);
        string(&mut b, b"a");
        string(&mut b, b"1");
        string(&mut b, b"bc");
        string(&mut b, b"");
        let mut p = TBinaryInputProtocol::new(&b[..], true);
        let m = p.read_map_begin().unwrap();
        assert_eq!(m.size, 2);
        let pairs: Vec<(String, String)> = (0..2)
            .map(|_| (p.read_string().unwrap(), p.read_string().unwrap()))
            .collect();
        assert_eq!(pairs, [("a".into(), "1".into()), ("bc".into(), "".into())]);
    }
}
