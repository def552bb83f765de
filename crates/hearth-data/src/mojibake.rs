//! Encoding damage: text that went through the wrong decoder.
//!
//! Two kinds are found, and both can be undone because no information was lost:
//! - **UTF-8 read as latin-1 or Windows-1252** ("cafÃ©", "donâ€™t"): a run of characters that
//!   map back to bytes 0x80–0xFF and whose bytes form valid multi-byte UTF-8. Repair decodes
//!   each such run as UTF-8 ("café", "don’t").
//! - **Windows-1252 punctuation read as latin-1**: the C1 control characters U+0080–U+009F,
//!   which never appear in real text, where cp1252 has curly quotes, dashes, the euro sign.
//!   Repair maps each to its cp1252 character.
//!
//! A run is only repaired when the whole run decodes, so genuine latin-1 text ("Ã" alone,
//! "naïve") is left alone.

/// Windows-1252's characters for the bytes 0x80–0x9F (`None` where cp1252 has none).
const CP1252_HIGH: [Option<char>; 32] = [
    Some('€'),
    None,
    Some('‚'),
    Some('ƒ'),
    Some('„'),
    Some('…'),
    Some('†'),
    Some('‡'),
    Some('ˆ'),
    Some('‰'),
    Some('Š'),
    Some('‹'),
    Some('Œ'),
    None,
    Some('Ž'),
    None,
    None,
    Some('‘'),
    Some('’'),
    Some('“'),
    Some('”'),
    Some('•'),
    Some('–'),
    Some('—'),
    Some('˜'),
    Some('™'),
    Some('š'),
    Some('›'),
    Some('œ'),
    None,
    Some('ž'),
    Some('Ÿ'),
];

/// The byte a character came from if it was decoded as latin-1 or cp1252 from a byte ≥ 0x80.
fn high_byte(c: char) -> Option<u8> {
    let code = c as u32;
    if (0x80..=0xFF).contains(&code) {
        return u8::try_from(code).ok();
    }
    CP1252_HIGH
        .iter()
        .position(|&m| m == Some(c))
        .and_then(|i| u8::try_from(0x80 + i).ok())
}

/// `text` with its encoding damage undone, or `None` when it has none.
pub fn repair(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut run: Vec<u8> = Vec::new();
    let mut run_text = String::new();
    let flush = |run: &mut Vec<u8>, run_text: &mut String, out: &mut String, changed: &mut bool| {
        if run.is_empty() {
            return;
        }
        match std::str::from_utf8(run) {
            // At least one multi-byte sequence (the run is all high bytes, so any valid UTF-8
            // here is multi-byte): UTF-8 that was decoded one byte at a time.
            Ok(decoded) => {
                out.push_str(decoded);
                *changed = true;
            }
            Err(_) => {
                for c in run_text.chars() {
                    match c as u32 {
                        code @ 0x80..=0x9F => match CP1252_HIGH[(code - 0x80) as usize] {
                            Some(fixed) => {
                                out.push(fixed);
                                *changed = true;
                            }
                            None => out.push(c),
                        },
                        _ => out.push(c),
                    }
                }
            }
        }
        run.clear();
        run_text.clear();
    };
    for c in text.chars() {
        match high_byte(c) {
            Some(b) => {
                run.push(b);
                run_text.push(c);
            }
            None => {
                flush(&mut run, &mut run_text, &mut out, &mut changed);
                out.push(c);
            }
        }
    }
    flush(&mut run, &mut run_text, &mut out, &mut changed);
    changed.then_some(out)
}

/// Whether `text` shows encoding damage that [`repair`] undoes.
pub fn is_damaged(text: &str) -> bool {
    // Cheap pre-check: damage needs a character from U+0080–U+00FF or cp1252's set.
    text.chars().any(|c| high_byte(c).is_some()) && repair(text).is_some()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn latin1(utf8: &str) -> String {
        utf8.bytes().map(char::from).collect()
    }

    #[test]
    fn utf8_read_as_latin1_is_repaired() {
        for original in ["café", "naïve 🚗 déjà vu", "don’t “quote”", "日本語"] {
            let damaged = latin1(original);
            assert!(is_damaged(&damaged), "{damaged}");
            assert_eq!(repair(&damaged).as_deref(), Some(original));
        }
    }

    #[test]
    fn utf8_read_as_cp1252_is_repaired() {
        // "don’t" as cp1252 shows "donâ€™t".
        assert_eq!(repair("donâ€™t").as_deref(), Some("don’t"));
        assert_eq!(repair("Ã©tÃ©").as_deref(), Some("été"));
    }

    #[test]
    fn cp1252_punctuation_read_as_latin1_is_repaired() {
        assert_eq!(
            repair("\u{93}hi\u{94} \u{96} \u{80}5").as_deref(),
            Some("“hi” – €5")
        );
    }

    #[test]
    fn clean_text_is_left_alone() {
        for clean in [
            "plain ascii",
            "café naïve",
            "Ã alone",
            "déjà",
            "🚗 emoji",
            "",
            "ÿ",
        ] {
            assert!(!is_damaged(clean), "{clean}");
            assert_eq!(repair(clean), None, "{clean}");
        }
    }
}
