//! Bytes as text: how process names, paths and arguments (arbitrary bytes on
//! Unix) become the UTF-8 strings of rows and columns.
//!
//! A module of its own because both the classifier (cache names) and the
//! rows use it, and neither should depend on the other for it.

use std::fmt::Write as _;

/// Bytes as text: valid UTF-8 is kept, every byte of an invalid sequence is
/// written as `\xNN`, so the result is valid UTF-8 (and JSON) and the
/// original bytes can be read back.
pub(crate) fn bytes_to_text(bytes: &[u8]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_escaped_and_recoverable() {
        assert_eq!(bytes_to_text(b"plain"), "plain");
        assert_eq!(bytes_to_text("é".as_bytes()), "é");
        assert_eq!(bytes_to_text(b"a\xffb\xc3"), "a\\xffb\\xc3");
        assert_eq!(bytes_to_text(b""), "");
    }
}
