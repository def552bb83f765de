//! IBANs: a country code, two check digits and up to 30 letters or digits, solid or in groups
//! of four, valid by the ISO 13616 mod-97 check (the rule is in the module header of
//! [`crate::pii`]).

use super::scan::{is_word, next_char, prev_char};
use super::{PiiKind, PiiMatch, push};

fn is_iban_byte(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// ISO 13616 check: the BBAN, then the country code and check digits, letters as 10..35, mod 97
/// computed digit by digit, must leave 1.
fn iban_mod97_valid<'a>(head: &'a [u8], body: impl Iterator<Item = &'a [u8]>) -> bool {
    let mut r = 0u32;
    for chunk in body.chain(std::iter::once(head)) {
        for &c in chunk {
            r = if c.is_ascii_digit() {
                (r * 10 + u32::from(c - b'0')) % 97
            } else if c.is_ascii_uppercase() {
                (r * 100 + u32::from(c - b'A') + 10) % 97
            } else {
                return false;
            };
        }
    }
    r == 1
}

/// End of a valid IBAN starting at `i` (country code and check digits already checked).
fn iban_at(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    let head = b.get(i..i + 4)?;
    let check = (head[2] - b'0') * 10 + (head[3] - b'0');
    if !(2..=98).contains(&check) {
        return None;
    }
    let body_start = i + 4;

    // Solid form: GB82WEST12345698765432.
    let mut end = body_start;
    while b.get(end).is_some_and(|&c| is_iban_byte(c)) {
        end += 1;
    }
    if end > body_start {
        let ok = (11..=30).contains(&(end - body_start))
            && !is_word(next_char(text, end))
            && iban_mod97_valid(head, std::iter::once(&b[body_start..end]));
        return ok.then_some(end);
    }

    // Grouped form: GB82 WEST 1234 5698 7654 32.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut pos = body_start;
    let mut total = 0;
    while b.get(pos) == Some(&b' ') {
        let s = pos + 1;
        let mut e = s;
        while e - s < 5 && b.get(e).is_some_and(|&c| is_iban_byte(c)) {
            e += 1;
        }
        let len = e - s;
        if len == 0 || len > 4 || is_word(next_char(text, e)) {
            break;
        }
        groups.push((s, e));
        total += len;
        if len < 4 || total > 30 {
            break;
        }
        pos = e;
    }
    (1..=groups.len()).rev().find_map(|m| {
        let part = &groups[..m];
        let len: usize = part.iter().map(|g| g.1 - g.0).sum();
        let ok =
            (11..=30).contains(&len) && iban_mod97_valid(head, part.iter().map(|&(s, e)| &b[s..e]));
        ok.then_some(part[m - 1].1)
    })
}

/// Every IBAN in `text`.
pub(super) fn find(text: &str, out: &mut Vec<PiiMatch>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 4 <= b.len() {
        let shape = b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_uppercase()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit();
        if shape
            && !is_word(prev_char(text, i))
            && let Some(end) = iban_at(text, i)
        {
            push(out, PiiKind::Iban, i, end);
            i = end;
            continue;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::iban_mod97_valid;
    use crate::pii::PiiKind;
    use crate::pii::tests::{none, only};

    #[test]
    fn ibans() {
        only(
            "IBAN GB82 WEST 1234 5698 7654 32, thanks",
            PiiKind::Iban,
            "GB82 WEST 1234 5698 7654 32",
        );
        only(
            "GB82WEST12345698765432",
            PiiKind::Iban,
            "GB82WEST12345698765432",
        );
        only(
            "to DE89370400440532013000.",
            PiiKind::Iban,
            "DE89370400440532013000",
        );
        only(
            "DE89 3704 0044 0532 0130 00",
            PiiKind::Iban,
            "DE89 3704 0044 0532 0130 00",
        );
        // A trailing capitalised word is not swallowed into the last group.
        only(
            "DE89 3704 0044 0532 0130 00 ASAP",
            PiiKind::Iban,
            "DE89 3704 0044 0532 0130 00",
        );
    }

    #[test]
    fn not_ibans() {
        none("GB83 WEST 1234 5698 7654 32"); // bad check digits
        none("GB82WEST12345698765433");
        none("DE89370400440532013001");
        none("de89370400440532013000"); // lower case
        none("XDE89370400440532013000");
        none("GB82 WEST");
        none("AB12 is a code");
    }

    #[test]
    fn mod97_by_hand() {
        assert!(iban_mod97_valid(
            b"GB82",
            std::iter::once(&b"WEST12345698765432"[..])
        ));
        assert!(!iban_mod97_valid(
            b"GB82",
            std::iter::once(&b"WEST12345698765431"[..])
        ));
        assert!(!iban_mod97_valid(
            b"GB82",
            std::iter::once(&b"west12345698765432"[..])
        ));
    }
}
