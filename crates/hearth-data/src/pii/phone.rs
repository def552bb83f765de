//! Phone numbers: international ones after a `+`, and national ones in a known grouped layout
//! (the rule is in the module header of [`crate::pii`]).
//!
//! A national number's digit groups are read with the shared digit-run scanner. An
//! international number is read by its own small state machine instead, because it may mix
//! separators and put parentheses around a group (`+44 (0)20 7946 0958`), which no other
//! number-shaped kind allows.

use super::scan::{
    DigitRun, digit_joined_after, digit_joined_before, digits_end, is_digit_at, is_word, next_char,
    prev_char,
};
use super::{PiiKind, PiiMatch, push};

/// Every phone number candidate in `text` (the caller drops those that overlap a card or an IP
/// address).
pub(super) fn find(text: &str, out: &mut Vec<PiiMatch>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'+' {
            if let Some(end) = international_phone(text, i) {
                push(out, PiiKind::Phone, i, end);
                i = end;
            } else {
                i += 1;
            }
        } else if c.is_ascii_digit() || (c == b'(' && is_digit_at(b, i + 1)) {
            let (found, resume) = national_phone(text, i);
            if let Some(end) = found {
                push(out, PiiKind::Phone, i, end);
            }
            i = resume.max(i + 1);
        } else {
            i += 1;
        }
    }
}

/// Whether a phone number may end at `end`.
fn phone_end_ok(text: &str, end: usize) -> bool {
    let next = next_char(text, end);
    !is_word(next) && next != Some('%') && !digit_joined_after(text.as_bytes(), end)
}

fn international_phone(text: &str, i: usize) -> Option<usize> {
    let b = text.as_bytes();
    let prev = prev_char(text, i);
    if is_word(prev) || prev == Some('+') {
        return None;
    }
    if !(is_digit_at(b, i + 1) || (b.get(i + 1) == Some(&b'(') && is_digit_at(b, i + 2))) {
        return None;
    }
    let mut pos = i + 1;
    let mut digits = 0usize;
    let mut trailing_zeros = 0usize;
    let mut depth = 0u8;
    let mut depth_at_last_digit = 0u8;
    let mut last_digit_end = None;
    let mut gap = 0usize; // characters since the last digit
    let mut gap_plain = 0usize; // spaces, hyphens, dots since the last digit
    while let Some(&c) = b.get(pos) {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 15 {
                    return None;
                }
                trailing_zeros = if c == b'0' { trailing_zeros + 1 } else { 0 };
                gap = 0;
                gap_plain = 0;
                depth_at_last_digit = depth;
                last_digit_end = Some(pos + 1);
            }
            b' ' | b'-' | b'.' => {
                if gap_plain >= 1 || gap >= 2 {
                    break;
                }
                gap_plain += 1;
                gap += 1;
            }
            b'(' => {
                if depth != 0 || gap >= 2 {
                    break;
                }
                depth = 1;
                gap += 1;
            }
            b')' => {
                if depth != 1 || gap != 0 {
                    break;
                }
                depth = 0;
                gap += 1;
            }
            _ => break,
        }
        pos += 1;
    }
    let end = last_digit_end?;
    let ok = depth_at_last_digit == 0
        && (7..=15).contains(&digits)
        && trailing_zeros < 6
        && phone_end_ok(text, end);
    ok.then_some(end)
}

/// Whether digit groups (lengths, first digit) form a known national layout.
fn national_layout_ok(b: &[u8], groups: &[(usize, usize)], paren: bool) -> bool {
    let lengths: Vec<usize> = groups.iter().map(|g| g.1 - g.0).collect();
    let total: usize = lengths.iter().sum();
    if !(10..=11).contains(&total) {
        return false;
    }
    let first = groups.first().map_or(0, |g| b[g.0]);
    match lengths.as_slice() {
        [3, 3, 4] => true,
        [1, 3, 3, 4] => !paren && first == b'1',
        [2, 2, 2, 2, 2] => !paren && first == b'0',
        [head, ..] if first == b'0' => {
            lengths.len() <= 3
                && (2..=5).contains(head)
                && lengths.iter().all(|l| (2..=8).contains(l))
        }
        _ => false,
    }
}

/// A national phone number starting at `i` (a digit or '('): its end if found, and where
/// scanning resumes.
fn national_phone(text: &str, i: usize) -> (Option<usize>, usize) {
    let b = text.as_bytes();
    let prev = prev_char(text, i);
    let start_ok = !is_word(prev)
        && !matches!(prev, Some('+' | '#' | '$' | '€' | '£' | '¥' | '₹'))
        && !digit_joined_before(b, i);

    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut pos = i;
    let paren = b[i] == b'(';
    if paren {
        let end = digits_end(b, i + 1);
        if b.get(end) != Some(&b')') {
            return (None, end);
        }
        groups.push((i + 1, end));
        pos = end + 1;
        if b.get(pos) == Some(&b' ') && is_digit_at(b, pos + 1) {
            pos += 1;
        }
        if !is_digit_at(b, pos) {
            return (None, pos);
        }
    }
    let mut run = DigitRun::read(b, pos, b" -.");
    run.cut_at_separator_change();
    let run_end = run.end();
    let sep = run.joins.first().copied();
    groups.extend(run.groups);
    if !start_ok || groups.len() < 2 {
        return (None, run_end);
    }
    // A space-separated run may carry an unrelated number after the phone number
    // ("555 123 4567 2 times"); other separators bind the whole run together.
    let shortest = if sep == Some(b' ') { 2 } else { groups.len() };
    for m in (shortest..=groups.len().min(5)).rev() {
        let end = groups[m - 1].1;
        if national_layout_ok(b, &groups[..m], paren) && phone_end_ok(text, end) {
            return (Some(end), end);
        }
    }
    (None, run_end)
}

#[cfg(test)]
mod tests {
    use crate::pii::PiiKind;
    use crate::pii::tests::{none, only};

    #[test]
    fn phones() {
        only(
            "call +44 20 7946 0958 now",
            PiiKind::Phone,
            "+44 20 7946 0958",
        );
        only("+1 (555) 123-4567", PiiKind::Phone, "+1 (555) 123-4567");
        only(
            "+44 (0)20 7946 0958.",
            PiiKind::Phone,
            "+44 (0)20 7946 0958",
        );
        only("+4915112345678", PiiKind::Phone, "+4915112345678");
        only("+33.6.12.34.56.78", PiiKind::Phone, "+33.6.12.34.56.78");
        only("(555) 123-4567", PiiKind::Phone, "(555) 123-4567");
        only("ring 555-123-4567!", PiiKind::Phone, "555-123-4567");
        only("555.123.4567", PiiKind::Phone, "555.123.4567");
        only("555 123 4567", PiiKind::Phone, "555 123 4567");
        only("1-800-555-1234", PiiKind::Phone, "1-800-555-1234");
        only("tel: 020 7946 0958", PiiKind::Phone, "020 7946 0958");
        only("0161 496 0000", PiiKind::Phone, "0161 496 0000");
        only("07700 900123", PiiKind::Phone, "07700 900123");
        only("01 23 45 67 89", PiiKind::Phone, "01 23 45 67 89");
        only("555 123 4567 2 times", PiiKind::Phone, "555 123 4567");
    }

    #[test]
    fn not_phones() {
        none("in 2019 we grew");
        none("on 2019-03-12 and 12/03/2019");
        none("at 12:30");
        none("only $1,299.99 today");
        none("call me at 3pm");
        none("count 12345 and 123456");
        none("5551234567");
        none("555-123-4567.8");
        none("555-123-45678");
        none("abc555-123-4567");
        none("$555-123-4567");
        none("#555-123-4567");
        none("+1000000 views");
        none("+1,000,000");
        none("+2019");
        none("up +12% or 3.14159 or 1,000,000");
        none("05.03.2019 12 and 05 03 2019 1230");
        only("192.168.100.100", PiiKind::IpAddress, "192.168.100.100");
    }
}
