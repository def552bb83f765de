//! Turning the raw bytes of a dataset file into text.
//!
//! A byte-order mark decides first: `FF FE` is UTF-16 little-endian, `FE FF` UTF-16 big-endian
//! (both as Windows tools write them), `EF BB BF` UTF-8. Without a mark the rule is the
//! reference script's: the whole file is UTF-8, and if it is not valid UTF-8 the whole file is
//! decoded as latin-1 instead. The decision is made once for the file, never per row, so the
//! result is exactly Python's `raw.decode("latin-1")` whenever the fallback applies; rows that
//! were UTF-8 then read as mojibake, which the quality report finds and cleaning can repair.

use std::borrow::Cow;

use serde::Serialize;

/// How the bytes of a dataset file were turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TextEncoding {
    /// The file was valid UTF-8.
    Utf8,
    /// UTF-8 behind a byte-order mark (dropped).
    Utf8Bom,
    /// UTF-16 little-endian behind its byte-order mark. Invalid sequences (unpaired
    /// surrogates, an odd trailing byte) become U+FFFD.
    Utf16Le,
    /// UTF-16 big-endian behind its byte-order mark.
    Utf16Be,
    /// The file was not valid UTF-8, so every byte was read as the code point of the same
    /// value (latin-1). Rows with bytes above 0x7F may not read as their author meant.
    Latin1Fallback,
}

impl TextEncoding {
    /// Whether the file said what it is (a byte-order mark) or was valid UTF-8: no guess made.
    pub fn is_certain(self) -> bool {
        !matches!(self, Self::Latin1Fallback)
    }
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks(2).map(|pair| match pair {
        [a, b] => unit([*a, *b]),
        // An odd trailing byte cannot be a code unit: decode it as U+FFFD.
        _ => 0xDC00,
    });
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Decodes a whole file: UTF-16 or UTF-8 as its byte-order mark says, else UTF-8, or latin-1
/// when the file is not valid UTF-8.
///
/// In the fallback a leading UTF-8 byte-order mark is kept (as the three characters `ï»¿`),
/// because that is what Python's `raw.decode("latin-1")` does and the two must agree.
pub fn decode_text(bytes: &[u8]) -> (Cow<'_, str>, TextEncoding) {
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return (
            Cow::Owned(utf16(rest, u16::from_le_bytes)),
            TextEncoding::Utf16Le,
        );
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return (
            Cow::Owned(utf16(rest, u16::from_be_bytes)),
            TextEncoding::Utf16Be,
        );
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => match text.strip_prefix('\u{FEFF}') {
            Some(text) => (Cow::Borrowed(text), TextEncoding::Utf8Bom),
            None => (Cow::Borrowed(text), TextEncoding::Utf8),
        },
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
        assert_eq!(enc, TextEncoding::Utf8Bom);
        let (text, enc) = decode_text("héllo".as_bytes());
        assert_eq!(text, "héllo");
        assert_eq!(enc, TextEncoding::Utf8);
    }

    #[test]
    fn utf16_follows_its_byte_order_mark() {
        let text = "a,é\n🚗";
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(
            decode_text(&le),
            (Cow::Borrowed(text), TextEncoding::Utf16Le)
        );
        assert_eq!(
            decode_text(&be),
            (Cow::Borrowed(text), TextEncoding::Utf16Be)
        );
        // An unpaired surrogate and an odd trailing byte become U+FFFD, never a panic.
        let (bad, _) = decode_text(&[0xFF, 0xFE, 0x00, 0xD8, 0x41, 0x00, 0x42]);
        assert_eq!(bad, "\u{FFFD}A\u{FFFD}");
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
