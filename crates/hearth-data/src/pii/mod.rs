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
//!
//! The code follows the same seams: one module per kind, and the helpers they share (among them
//! the one digit-run scanner that cards, IPv4 addresses and national phone numbers read their
//! digits with) in `scan`.

mod card;
mod email;
mod iban;
mod ip;
mod phone;
mod scan;

use std::cmp::Reverse;

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

    /// The placeholder a redaction writes: `[EMAIL]`, `[PHONE]`, `[CARD]`, `[IBAN]`, `[IP]`.
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
    email::find(text, &mut candidates);
    card::find(text, &mut candidates);
    iban::find(text, &mut candidates);
    ip::find(text, &mut candidates);

    let mut phones = Vec::new();
    phone::find(text, &mut phones);
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

/// Records a finding of `kind` over the bytes `start..end`.
fn push(out: &mut Vec<PiiMatch>, kind: PiiKind, start: usize, end: usize) {
    out.push(PiiMatch { kind, start, end });
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

    pub(super) fn only(text: &str, kind: PiiKind, expected: &str) {
        assert_eq!(kinds(text), vec![(kind, expected)], "in {text:?}");
    }

    pub(super) fn none(text: &str) {
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
