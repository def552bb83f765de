//! Turning the raw bytes of a dataset file into text.
//!
//! The rule is the reference script's: the whole file is UTF-8 (a leading byte-order mark is
//! dropped), and if it is not valid UTF-8 the whole file is decoded as latin-1 instead. The
//! decision is made once for the file, never per row, so the result is exactly Python's
//! `raw.decode("latin-1")` whenever the fallback applies.

use std::borrow::Cow;

use serde::Serialize;

/// How the bytes of a dataset file were turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextEncoding {
    /// The file was valid UTF-8.
    Utf8,
    /// The file was not valid UTF-8, so every byte was read as the code point of the same
    /// value (latin-1). Rows with bytes above 0x7F may not read as their author meant.
    Latin1Fallback,
}

/// Decodes a whole file: UTF-8 without its byte-order mark, or latin-1 when the file is not
/// valid UTF-8.
///
/// In the fallback a leading byte-order mark is kept (as the three characters `ï»¿`), because
/// that is what Python's `raw.decode("latin-1")` does and the two must agree.
pub fn decode_text(bytes: &[u8]) -> (Cow<'_, str>, TextEncoding) {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
            (Cow::Borrowed(text), TextEncoding::Utf8)
        }
        Err(_) => {
            // Every byte value is a valid latin-1 character with the same code point.
            let text: String = bytes.iter().map(|&b| char::from(b)).collect();
            (Cow::Owned(text), TextEncoding::Latin1Fallback)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is the report a failing test should give.
mod tests {
    use super::*;

    #[test]
    fn utf8_passes_through_and_loses_its_bom() {
        let (text, enc) = decode_text("\u{FEFF}héllo".as_bytes());
        assert_eq!(text, "héllo");
        assert_eq!(enc, TextEncoding::Utf8);
    }

    #[test]
    fn invalid_utf8_decodes_as_latin1_byte_for_byte() {
        let (text, enc) = decode_text(b"caf\xE9 \x92quoted\x92 \xFF");
        assert_eq!(text, "caf\u{e9} \u{92}quoted\u{92} \u{ff}");
        assert_eq!(enc, TextEncoding::Latin1Fallback);
    }

    #[test]
    fn fallback_keeps_the_bom_as_python_does() {
        // Python: b"\xef\xbb\xbfa\xe9".decode("latin-1") == "ï»¿aé"
        let (text, enc) = decode_text(b"\xEF\xBB\xBFa\xE9");
        assert_eq!(text, "\u{ef}\u{bb}\u{bf}a\u{e9}");
        assert_eq!(enc, TextEncoding::Latin1Fallback);
    }
}
