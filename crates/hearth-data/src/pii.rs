//! Personal data detection and redaction.
//!
//! A dataset quality report tells the user which rows contain personal data, and an opt-in
//! cleaning step replaces it with typed placeholders (`[EMAIL]`, `[PHONE]`, `[CARD]`, `[IBAN]`,
//! `[IP]`). The detectors are hand-written scanners over the text's bytes (no regex engine, so
//! the crate stays small in the browser); every match starts and ends on an ASCII character, so
//! byte offsets always land on char boundaries, and nothing here can panic on any input.
//!
//! Precision matters more than recall: short-text datasets (tweets) are full of numbers,
//! hashtags, `@mentions`, times, dates, prices and version strings, and a false alarm there
//! teaches the user to ignore the report. The rules:
//!
//! - **E-mail address**: `local@domain.tld`. The local part is ASCII letters, digits and
//!   `. _ % + -` (no leading, trailing or doubled dot); the domain is two or more dot-separated
//!   labels of ASCII letters, digits and inner hyphens, and the last label (the TLD) is at least
//!   two letters. A sentence's final dot is not part of the domain. `@user` mentions (nothing
//!   before the `@`) and `me@home` (no TLD) are not e-mail addresses.
//! - **Payment card number**: 13 to 19 digits, either ungrouped or grouped by single spaces or
//!   single hyphens (one kind throughout), whose first digit is 2 to 6 (Mastercard 2/5, Amex 3,
//!   Visa 4, Discover 6) and which pass the Luhn check. The number must not touch a letter or
//!   a digit, nor a digit through `. , / : -` (so it is not the middle of a longer number), nor
//!   follow a `+` (that marks an international phone number).
//!   When a space-grouped run of digits is longer than a card, a part of it laid out like a card
//!   (4-4-4-4, 4-4-4-4-3, 4-6-5 or 4-6-4) is still found.
//! - **IBAN**: two uppercase letters, two check digits (02 to 98), then 11 to 30 uppercase
//!   letters or digits, either written solid or in space-separated groups of four (the last group
//!   may be shorter), valid by the ISO 13616 mod-97 check. Lower-case IBANs are not detected.
//! - **IP address**: an IPv4 dotted quad that `std::net::Ipv4Addr` accepts (each octet 0 to 255,
//!   no leading zeros) and that is not part of a longer dotted number such as the version string
//!   `1.2.3.4.5`, nor touches a letter or digit (`v1.2.3.4` is a version). An IPv6 address in
//!   full or compressed form that `std::net::Ipv6Addr` accepts, with at least two `:`, at least
//!   one hex letter or a `::`, and at least two non-empty groups, so times such as `12:30` or
//!   `10:30:45` never match and neither do `::` or the loopback `::1`, which identify no one.
//! - **Phone number**: either international, a `+` followed by 7 to 15 digits with optional
//!   single spaces, hyphens or dots between them and parentheses around a group (`+1 (555)
//!   123-4567`, `+44 (0)20 7946 0958`); or national, 10 to 11 digits written in a known grouped
//!   layout: `555-123-4567`, `555.123.4567`, `555 123 4567`, `(555) 123-4567`,
//!   `1-800-555-1234`, or a trunk-prefixed number starting with `0` in two or three groups
//!   (`020 7946 0958`, `0161 496 0000`, `07700 900123`) or in five pairs (`01 23 45 67 89`).
//!   One separator kind is used throughout a national number. Ungrouped national numbers
//!   (`5551234567`) are not detected: they cannot be told apart from counts and ids. A phone
//!   number must not touch a letter or digit, nor a digit through `. , / : -`, nor follow a
//!   currency sign or `#`, nor be followed by `%`; an international one must not end in six
//!   zeros (`+1000000 views`). Years, dates, times, prices and short numbers never have a
//!   matching shape. A phone candidate that overlaps a payment card or an IP address is dropped.
//!
//! When candidates of different kinds overlap, the one that starts earlier wins; on equal
//! starts the longer one wins (then, on equal spans: card, IBAN, e-mail, IP, phone).

use std::cmp::Reverse;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Kinds of personal data Hearth finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Phone,
    PaymentCard,
    Iban,
    IpAddress,
}

impl PiiKind {
    /// Every kind, in declaration order.
    pub const ALL: [PiiKind; 5] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::PaymentCard,
        PiiKind::Iban,
        PiiKind::IpAddress,
    ];

    /// The placeholder a redaction writes: "[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[IP]".
    #[must_use]
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::PaymentCard => "[CARD]",
            PiiKind::Iban => "[IBAN]",
            PiiKind::IpAddress => "[IP]",
        }
    }

    /// Plain-English name for reports: "e-mail address", "phone number", "payment card number",
    /// "IBAN", "IP address".
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            PiiKind::Email => "e-mail address",
            PiiKind::Phone => "phone number",
            PiiKind::PaymentCard => "payment card number",
            PiiKind::Iban => "IBAN",
            PiiKind::IpAddress => "IP address",
        }
    }

    /// Tie-break between candidates with the same span: lower wins.
    fn precedence(self) -> u8 {
        match self {
            PiiKind::PaymentCard => 0,
            PiiKind::Iban => 1,
            PiiKind::Email => 2,
            PiiKind::IpAddress => 3,
            PiiKind::Phone => 4,
        }
    }
}

/// One finding: byte range in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiMatch {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
}

/// All personal data in `text`, sorted by start, non-overlapping (when candidates overlap keep
/// the earlier-starting one, ties: the longer one).
#[must_use]
pub fn find_pii(text: &str) -> Vec<PiiMatch> {
    let mut candidates = Vec::new();
    find_emails(text, &mut candidates);
    find_cards(text, &mut candidates);
    find_ibans(text, &mut candidates);
    find_ipv4(text, &mut candidates);
    find_ipv6(text, &mut candidates);

    let mut phones = Vec::new();
    find_phones(text, &mut phones);
    drop_phones_overlapping_cards_and_ips(&candidates, &mut phones);
    candidates.extend(phones);

    candidates.sort_by_key(|m| (m.start, Reverse(m.end), m.kind.precedence()));
    let mut kept: Vec<PiiMatch> = Vec::with_capacity(candidates.len());
    let mut covered_to = 0;
    for candidate in candidates {
        if candidate.end > candidate.start && candidate.start >= covered_to {
            covered_to = candidate.end;
            kept.push(candidate);
        }
    }
    kept
}

/// `text` with every finding replaced by its kind's placeholder, and the findings.
#[must_use]
pub fn redact_pii(text: &str) -> (String, Vec<PiiMatch>) {
    let found = find_pii(text);
    let mut out = String::with_capacity(text.len());
    let mut copied_to = 0;
    for m in &found {
        out.push_str(text.get(copied_to..m.start).unwrap_or_default());
        out.push_str(m.kind.placeholder());
        copied_to = m.end;
    }
    out.push_str(text.get(copied_to..).unwrap_or_default());
    (out, found)
}

// ---------------------------------------------------------------------------------------------
// Shared helpers. All positions passed around are byte offsets of ASCII characters (or the end
// of the text), hence char boundaries; `get` keeps even a wrong offset from panicking.

fn prev_char(text: &str, i: usize) -> Option<char> {
    text.get(..i)?.chars().next_back()
}

fn next_char(text: &str, i: usize) -> Option<char> {
    text.get(i..)?.chars().next()
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

fn is_digit_at(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(u8::is_ascii_digit)
}

fn is_number_joiner(c: u8) -> bool {
    matches!(c, b'.' | b',' | b'/' | b':' | b'-')
}

/// Whether the number starting at `i` continues a digit before it through `. , / : -`.
fn digit_joined_before(b: &[u8], i: usize) -> bool {
    i >= 2 && is_number_joiner(b[i - 1]) && b[i - 2].is_ascii_digit()
}

/// Whether the number ending at `end` continues into a digit after it through `. , / : -`.
fn digit_joined_after(b: &[u8], end: usize) -> bool {
    b.get(end).is_some_and(|&c| is_number_joiner(c)) && is_digit_at(b, end + 1)
}

/// End of the run of ASCII digits starting at `i`.
fn digits_end(b: &[u8], mut i: usize) -> usize {
    while is_digit_at(b, i) {
        i += 1;
    }
    i
}

/// Digit groups starting at the digit at `i`, joined by single separators from `seps` (a
/// separator counts only when a digit follows it). Returns the groups and the separators.
fn read_digit_groups(b: &[u8], i: usize, seps: &[u8]) -> (Vec<(usize, usize)>, Vec<u8>) {
    let mut groups = vec![(i, digits_end(b, i))];
    let mut joins = Vec::new();
    let mut pos = groups[0].1;
    while let Some(&c) = b.get(pos) {
        if !seps.contains(&c) || !is_digit_at(b, pos + 1) {
            break;
        }
        let end = digits_end(b, pos + 1);
        groups.push((pos + 1, end));
        joins.push(c);
        pos = end;
    }
    (groups, joins)
}

fn group_digits(b: &[u8], groups: &[(usize, usize)]) -> Vec<u8> {
    groups
        .iter()
        .flat_map(|&(s, e)| b[s..e].iter().map(|d| d - b'0'))
        .collect()
}

fn push(out: &mut Vec<PiiMatch>, kind: PiiKind, start: usize, end: usize) {
    out.push(PiiMatch { kind, start, end });
}

// ---------------------------------------------------------------------------------------------
// E-mail addresses.

fn is_local_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

fn valid_domain(domain: &[u8]) -> bool {
    let labels: Vec<&[u8]> = domain.split(|&c| c == b'.').collect();
    let Some(tld) = labels.last() else {
        return false;
    };
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.first() != Some(&b'-')
                && label.last() != Some(&b'-')
        })
        && tld.len() >= 2
        && tld.iter().all(u8::is_ascii_alphabetic)
}

fn find_emails(text: &str, out: &mut Vec<PiiMatch>) {
    let b = text.as_bytes();
    let mut floor = 0;
    for at in 0..b.len() {
        if b[at] != b'@' || at < floor {
            continue;
        }
        let mut start = at;
        while start > floor && is_local_byte(b[start - 1]) {
            start -= 1;
        }
        while start < at && b[start] == b'.' {
            start += 1;
        }
        let local = &b[start..at];
        if local.is_empty() || local.last() == Some(&b'.') || local.windows(2).any(|w| w == b"..") {
            continue;
        }
        let mut end = at + 1;
        while b.get(end).is_some_and(|&c| is_domain_byte(c)) {
            end += 1;
        }
        while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
            end -= 1;
        }
        if !valid_domain(&b[at + 1..end]) || is_word(next_char(text, end)) {
            continue;
        }
        push(out, PiiKind::Email, start, end);
        floor = end;
    }
}

// ---------------------------------------------------------------------------------------------
// Payment cards.

/// Layouts (group lengths) in which a card is found inside a longer space-grouped digit run.
const CARD_LAYOUTS: [&[usize]; 4] = [&[4, 4, 4, 4, 3], &[4, 4, 4, 4], &[4, 6, 5], &[4, 6, 4]];

fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, &d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d);
        if k % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn card_digits_valid(b: &[u8], groups: &[(usize, usize)]) -> bool {
    let digits = group_digits(b, groups);
    (13..=19).contains(&digits.len())
        && digits.first().is_some_and(|d| (2..=6).contains(d))
        && luhn_valid(&digits)
}

fn all_same(seps: &[u8]) -> bool {
    seps.windows(2).all(|w| w[0] == w[1])
}

fn find_cards(text: &str, out: &mut Vec<PiiMatch>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let (groups, seps) = read_digit_groups(b, i, b" -");
        let run_end = groups.last().map_or(i + 1, |g| g.1);
        let prev = prev_char(text, i);
        let start_ok = !is_word(prev) && prev != Some('+') && !digit_joined_before(b, i);
        let end_ok = |end: usize| !is_word(next_char(text, end)) && !digit_joined_after(b, end);

        if start_ok && end_ok(run_end) && all_same(&seps) && card_digits_valid(b, &groups) {
            push(out, PiiKind::PaymentCard, i, run_end);
        } else if groups.len() > 1 {
            let mut gi = 0;
            while gi < groups.len() {
                let found = CARD_LAYOUTS.iter().find_map(|layout| {
                    let gj = gi + layout.len();
                    let part = groups.get(gi..gj)?;
                    let lengths_fit = part.iter().zip(layout.iter()).all(|(g, &l)| g.1 - g.0 == l);
                    let left_ok = if gi == 0 {
                        start_ok
                    } else {
                        seps[gi - 1] == b' '
                    };
                    let right_ok = if gj == groups.len() {
                        end_ok(run_end)
                    } else {
                        seps[gj - 1] == b' '
                    };
                    (lengths_fit
                        && left_ok
                        && right_ok
                        && all_same(&seps[gi..gj - 1])
                        && card_digits_valid(b, part))
                    .then_some(gj)
                });
                match found {
                    Some(gj) => {
                        push(out, PiiKind::PaymentCard, groups[gi].0, groups[gj - 1].1);
                        gi = gj;
                    }
                    None => gi += 1,
                }
            }
        }
        i = run_end;
    }
}

// ---------------------------------------------------------------------------------------------
// IBANs.

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

fn find_ibans(text: &str, out: &mut Vec<PiiMatch>) {
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

// ---------------------------------------------------------------------------------------------
// IP addresses.

fn find_ipv4(text: &str, out: &mut Vec<PiiMatch>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let (groups, _) = read_digit_groups(b, i, b".");
        let end = groups.last().map_or(i + 1, |g| g.1);
        let dotted_before = i >= 2 && b[i - 1] == b'.' && b[i - 2].is_ascii_digit();
        if groups.len() == 4
            && !dotted_before
            && !is_word(prev_char(text, i))
            && !is_word(next_char(text, end))
            && text
                .get(i..end)
                .is_some_and(|s| s.parse::<Ipv4Addr>().is_ok())
        {
            push(out, PiiKind::IpAddress, i, end);
        }
        i = end;
    }
}

fn is_ipv6_byte(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':' || c == b'.'
}

fn ipv6_candidate_ok(s: &str) -> bool {
    let colons = s.bytes().filter(|&c| c == b':').count();
    let hex_letter = s.bytes().any(|c| c.is_ascii_alphabetic());
    let groups = s
        .split(':')
        .filter(|g| g.bytes().any(|c| c.is_ascii_hexdigit()))
        .count();
    s.len() <= 45
        && colons >= 2
        && (hex_letter || s.contains("::"))
        && groups >= 2
        && s.parse::<Ipv6Addr>().is_ok()
}

fn find_ipv6(text: &str, out: &mut Vec<PiiMatch>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !is_ipv6_byte(b[i]) {
            i += 1;
            continue;
        }
        let mut token_end = i;
        while b.get(token_end).is_some_and(|&c| is_ipv6_byte(c)) {
            token_end += 1;
        }
        let next = token_end;
        let mut start = i;
        let mut end = token_end;
        while start < end && b[start] == b'.' {
            start += 1;
        }
        // "IP:fe80::1": a single leading ':' belongs to the text, not the address.
        let label_colon = b.get(start) == Some(&b':') && b.get(start + 1) != Some(&b':');
        if label_colon {
            start += 1;
        }
        let left_ok = label_colon || start > i || !is_word(prev_char(text, start));
        if left_ok && b[start..end].contains(&b':') && end - start <= 64 {
            while end > start && b[end - 1] == b'.' {
                end -= 1;
            }
            let mut found = None;
            for _ in 0..2 {
                let Some(s) = text.get(start..end) else { break };
                if ipv6_candidate_ok(s) {
                    found = Some(end);
                    break;
                }
                // "2001:db8::1: down": a trailing single ':' is punctuation.
                if s.ends_with(':') && !s.ends_with("::") {
                    end -= 1;
                    while end > start && b[end - 1] == b'.' {
                        end -= 1;
                    }
                } else {
                    break;
                }
            }
            if let Some(end) = found
                && !is_word(next_char(text, end))
            {
                push(out, PiiKind::IpAddress, start, end);
            }
        }
        i = next.max(i + 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Phone numbers.

fn find_phones(text: &str, out: &mut Vec<PiiMatch>) {
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
    let end = digits_end(b, pos);
    groups.push((pos, end));
    pos = end;
    let mut sep = None;
    while let Some(&c) = b.get(pos) {
        if !matches!(c, b' ' | b'-' | b'.')
            || !is_digit_at(b, pos + 1)
            || sep.is_some_and(|s| s != c)
        {
            break;
        }
        sep = Some(c);
        let end = digits_end(b, pos + 1);
        groups.push((pos + 1, end));
        pos = end;
    }
    let run_end = pos;
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

/// Cards and IP addresses take precedence over phone numbers wherever they overlap.
fn drop_phones_overlapping_cards_and_ips(others: &[PiiMatch], phones: &mut Vec<PiiMatch>) {
    let mut blockers: Vec<(usize, usize)> = others
        .iter()
        .filter(|m| matches!(m.kind, PiiKind::PaymentCard | PiiKind::IpAddress))
        .map(|m| (m.start, m.end))
        .collect();
    if blockers.is_empty() {
        return;
    }
    blockers.sort_unstable();
    let mut max_end = Vec::with_capacity(blockers.len());
    let mut running = 0;
    for &(_, end) in &blockers {
        running = running.max(end);
        max_end.push(running);
    }
    phones.retain(|p| {
        let before = blockers.partition_point(|&(start, _)| start < p.end);
        before == 0 || max_end[before - 1] <= p.start
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(PiiKind, &str)> {
        find_pii(text)
            .into_iter()
            .map(|m| (m.kind, &text[m.start..m.end]))
            .collect()
    }

    fn only(text: &str, kind: PiiKind, expected: &str) {
        assert_eq!(kinds(text), vec![(kind, expected)], "in {text:?}");
    }

    fn none(text: &str) {
        assert_eq!(kinds(text), vec![], "in {text:?}");
    }

    #[test]
    fn kind_names() {
        let placeholders: Vec<_> = PiiKind::ALL.iter().map(|k| k.placeholder()).collect();
        assert_eq!(
            placeholders,
            ["[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[IP]"]
        );
        let names: Vec<_> = PiiKind::ALL.iter().map(|k| k.describe()).collect();
        assert_eq!(
            names,
            [
                "e-mail address",
                "phone number",
                "payment card number",
                "IBAN",
                "IP address"
            ]
        );
        assert_eq!(
            serde_json::to_string(&PiiKind::PaymentCard).unwrap(),
            "\"payment_card\""
        );
        assert_eq!(
            serde_json::to_string(&PiiKind::IpAddress).unwrap(),
            "\"ip_address\""
        );
    }

    #[test]
    fn emails() {
        only(
            "mail jane.doe@example.com now",
            PiiKind::Email,
            "jane.doe@example.com",
        );
        only(
            "Write to a+b_c-d%e@mail.co.uk.",
            PiiKind::Email,
            "a+b_c-d%e@mail.co.uk",
        );
        only("(JOHN@EXAMPLE.ORG)", PiiKind::Email, "JOHN@EXAMPLE.ORG");
        only(
            "x@sub-domain.example.io,",
            PiiKind::Email,
            "x@sub-domain.example.io",
        );
        only("...bob@site.net", PiiKind::Email, "bob@site.net");
    }

    #[test]
    fn not_emails() {
        none("thanks @someone and @user.name!");
        none("me@home tonight");
        none("a@b.c is too short");
        none("x@example.123");
        none("bad..dots@example.com");
        none("trail.@example.com");
        none("x@-bad.com");
        none("x@bad-.com");
        none("x@.com");
        none("RT @elonmusk: hello @ 5pm");
    }

    #[test]
    fn payment_cards() {
        only(
            "card 4111 1111 1111 1111 ok",
            PiiKind::PaymentCard,
            "4111 1111 1111 1111",
        );
        only(
            "4111-1111-1111-1111",
            PiiKind::PaymentCard,
            "4111-1111-1111-1111",
        );
        only(
            "mc:5555555555554444.",
            PiiKind::PaymentCard,
            "5555555555554444",
        );
        only(
            "amex 378282246310005",
            PiiKind::PaymentCard,
            "378282246310005",
        );
        only(
            "amex 3782 822463 10005",
            PiiKind::PaymentCard,
            "3782 822463 10005",
        );
        // A card laid out 4-4-4-4 inside a longer space-grouped run (a CVV after it).
        only(
            "pay 4111 1111 1111 1111 123 thx",
            PiiKind::PaymentCard,
            "4111 1111 1111 1111",
        );
    }

    #[test]
    fn not_payment_cards() {
        none("4111 1111 1111 1112"); // Luhn fails
        none("5555555555554445");
        none("1234567812345670"); // Luhn passes, but no card starts with 1
        none("tweet id 1234567890123456789");
        none("4111 1111-1111 1111"); // mixed separators
        none("x4111111111111111");
        none("4111111111111111y");
        none("44111111111111111111"); // 20 digits
        none("4111111111111111.00");
        none("4111 1111"); // too short
    }

    #[test]
    fn luhn_by_hand() {
        assert!(luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn_valid(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
        assert!(luhn_valid(&[0]));
    }

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

    #[test]
    fn ip_addresses() {
        only("from 192.168.1.1 today", PiiKind::IpAddress, "192.168.1.1");
        only("ip=10.0.0.255.", PiiKind::IpAddress, "10.0.0.255");
        only("8.8.8.8:53", PiiKind::IpAddress, "8.8.8.8");
        only("at 2001:db8::1 now", PiiKind::IpAddress, "2001:db8::1");
        only(
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            PiiKind::IpAddress,
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        );
        only(
            "[fe80::1ff:fe23:4567:890a]:443",
            PiiKind::IpAddress,
            "fe80::1ff:fe23:4567:890a",
        );
        only("IP:fe80::1 down", PiiKind::IpAddress, "fe80::1");
        only("host 2001:db8::1: down", PiiKind::IpAddress, "2001:db8::1");
        only(
            "mapped ::ffff:192.168.1.1",
            PiiKind::IpAddress,
            "::ffff:192.168.1.1",
        );
    }

    #[test]
    fn not_ip_addresses() {
        none("256.1.1.1");
        none("v1.2.3.4.5");
        none("release 1.2.3.4.5 is out");
        none("v1.2.3.4");
        none("1.2.3");
        none("01.02.03.04");
        none("meet at 12:30 or 10:30:45");
        none("ratio 1:2:3");
        none(":: or ::1 or :::");
        none("MAC 00:1A:2B:3C:4D:5E");
        none("C++::std");
    }

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

    #[test]
    fn tweet_noise_finds_nothing() {
        none(
            "Scored 2019 points at 12:30 on 2019-03-12, price $1,299.99, v1.2.3.4.5, \
             call me at 3pm @someone #100DaysOfCode 1,000,000 views 3.14159 50% 10/10 \
             🔥🔥 RT @user: 24/7 ★★★★☆ 4.5/5 #2020 +5 pts, 1st, 2nd, 3rd, 9-5, 1990s, 10k, \
             v2.0.1 ISO 8601 and room 101",
        );
    }

    #[test]
    fn several_in_one_text() {
        let text = "Mail jane.doe@example.com or call +44 20 7946 0958, card 4111 1111 1111 1111, \
                    IBAN GB82 WEST 1234 5698 7654 32, server 192.168.1.1 / 2001:db8::1.";
        let (redacted, found) = redact_pii(text);
        assert_eq!(
            redacted,
            "Mail [EMAIL] or call [PHONE], card [CARD], IBAN [IBAN], server [IP] / [IP]."
        );
        let found_kinds: Vec<_> = found.iter().map(|m| m.kind).collect();
        assert_eq!(
            found_kinds,
            [
                PiiKind::Email,
                PiiKind::Phone,
                PiiKind::PaymentCard,
                PiiKind::Iban,
                PiiKind::IpAddress,
                PiiKind::IpAddress
            ]
        );
        assert!(found.windows(2).all(|w| w[0].end <= w[1].start));
        assert_eq!(&text[found[0].start..found[0].end], "jane.doe@example.com");
    }

    #[test]
    fn redaction_keeps_unicode_around_findings() {
        let (redacted, found) = redact_pii("héllo 🙂 bob@example.com — ☎ 555-123-4567 ✓");
        assert_eq!(redacted, "héllo 🙂 [EMAIL] — ☎ [PHONE] ✓");
        assert_eq!(found.len(), 2);
        assert_eq!(redact_pii("").0, "");
        assert_eq!(redact_pii("nothing here").0, "nothing here");
    }

    #[test]
    fn overlap_precedence() {
        // Same start: the longer e-mail wins over the phone number it begins with.
        only(
            "+15551234567@example.com",
            PiiKind::Email,
            "+15551234567@example.com",
        );
        only(
            "555-123-4567@example.com",
            PiiKind::Email,
            "555-123-4567@example.com",
        );
        // An IPv4 inside an IPv6 address: the earlier-starting IPv6 covers it.
        let found = find_pii("::ffff:10.1.2.3");
        assert_eq!(
            found,
            vec![PiiMatch {
                kind: PiiKind::IpAddress,
                start: 0,
                end: 15
            }]
        );
        // Cards take precedence over phone numbers (the helper's own test covers a phone that
        // starts earlier). "+1 " then a grouped card is too long for a phone: the card is found.
        only(
            "+1 4111 1111 1111 1111",
            PiiKind::PaymentCard,
            "4111 1111 1111 1111",
        );
        // "1 4222222222222" is one 14-digit run starting with 1, so no card: a phone number.
        only("+1 4222222222222", PiiKind::Phone, "+1 4222222222222");
        // ... and over one that starts at the same place ("411 111 1111" is a 3-3-4 number).
        only(
            "411 111 1111 111111",
            PiiKind::PaymentCard,
            "411 111 1111 111111",
        );
        // But a "+" right before the digits makes them a phone number, Luhn or not.
        only("+4222222222222", PiiKind::Phone, "+4222222222222");
        // The IBAN starts first; no card or phone inside it is reported.
        only(
            "GB82WEST12345698765432",
            PiiKind::Iban,
            "GB82WEST12345698765432",
        );
    }

    #[test]
    fn phones_dropped_where_they_overlap_cards_or_ips() {
        let others = vec![
            PiiMatch {
                kind: PiiKind::PaymentCard,
                start: 10,
                end: 20,
            },
            PiiMatch {
                kind: PiiKind::Email,
                start: 30,
                end: 40,
            },
            PiiMatch {
                kind: PiiKind::IpAddress,
                start: 50,
                end: 60,
            },
        ];
        let phone = |start, end| PiiMatch {
            kind: PiiKind::Phone,
            start,
            end,
        };
        let mut phones = vec![
            phone(0, 10),
            phone(5, 11),
            phone(19, 25),
            phone(25, 35),
            phone(45, 51),
            phone(60, 70),
        ];
        drop_phones_overlapping_cards_and_ips(&others, &mut phones);
        assert_eq!(phones, vec![phone(0, 10), phone(25, 35), phone(60, 70)]);
    }

    #[test]
    fn never_panics_and_offsets_are_char_boundaries() {
        let mut inputs: Vec<String> = [
            "",
            "@",
            "@@",
            "a@",
            "@b.com",
            "+",
            "++",
            "+(",
            "+(1",
            "(",
            "(5",
            "(555)",
            "(555) ",
            "1",
            "9",
            "0",
            ":",
            "::",
            ":::",
            ".",
            "..",
            "1.",
            "1.2.3.",
            "GB",
            "GB8",
            "GB82",
            "GB82 ",
            "GB82 WEST 1234 5698 7654 3",
            "4111 1111 1111 111",
            "🙂",
            "🙂@🙂.🙂",
            "é@é.com",
            "e\u{301}@example.com",
            "a\u{301}555-123-4567\u{301}",
            "١٢٣٤٥٦٧٨٩٠١",
            "+١٢٣٤٥٦٧٨٩",
            "５５５-１２３-４５６７",
            "x@y.zz🙂",
            "🙂4111111111111111🙂",
            "🙂192.168.1.1🙂",
            "fe80::1🙂",
            "\u{0}\u{7f}\u{ffff}",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        inputs.push("1".repeat(10_000));
        inputs.push("1.".repeat(5_000));
        inputs.push("1 ".repeat(5_000));
        inputs.push("1-".repeat(5_000));
        inputs.push("a@".repeat(5_000));
        inputs.push("@a.".repeat(3_400));
        inputs.push("a".repeat(10_000) + "@" + &"b.".repeat(5_000) + "com");
        inputs.push("AB12".repeat(2_500));
        inputs.push("AB12 ".repeat(2_000));
        inputs.push("f:".repeat(5_000));
        inputs.push("+1 ".repeat(3_400));
        inputs.push("(1".repeat(5_000));
        inputs.push("🙂1".repeat(3_000));
        inputs.push("é4111 1111 1111 1111".repeat(500));
        inputs.push("x".repeat(9_990) + " 4111 1111 1111 1111");
        inputs.push("jane@example.com 555-123-4567 🙂 ".repeat(300));
        for input in &inputs {
            let found = find_pii(input);
            for m in &found {
                assert!(m.start < m.end && m.end <= input.len());
                assert!(input.is_char_boundary(m.start) && input.is_char_boundary(m.end));
            }
            assert!(found.windows(2).all(|w| w[0].end <= w[1].start));
            let (redacted, again) = redact_pii(input);
            assert_eq!(again, found);
            if found.is_empty() {
                assert_eq!(&redacted, input);
            }
        }
        let long = "jane@example.com 555-123-4567 🙂 ".repeat(300);
        assert_eq!(find_pii(&long).len(), 600);
        let tail = "x".repeat(9_990) + " 4111 1111 1111 1111";
        only(&tail, PiiKind::PaymentCard, "4111 1111 1111 1111");
    }

    #[test]
    fn never_panics_on_random_mixtures() {
        const PIECES: [&str; 24] = [
            "0", "1", "4", "5", "9", " ", "-", ".", ":", "::", "+", "(", ")", "@", "a", "F",
            "GB82", "com", "🙂", "é", "\u{301}", "$", "%", "/",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut text = String::new();
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let len = (state >> 58) as usize;
            for _ in 0..len {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                text.push_str(PIECES[(state >> 33) as usize % PIECES.len()]);
            }
            let (redacted, found) = redact_pii(&text);
            for m in &found {
                assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
            }
            assert!(found.windows(2).all(|w| w[0].end <= w[1].start));
            assert!(redacted.len() <= text.len() + 7 * found.len());
        }
    }
}
