//! E-mail addresses: `local@domain.tld`, found from each `@` outwards (the rule is in the
//! module header of [`crate::pii`]).

use super::scan::{is_word, next_char};
use super::{PiiKind, PiiMatch, push};

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

/// Every e-mail address in `text`.
pub(super) fn find(text: &str, out: &mut Vec<PiiMatch>) {
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

#[cfg(test)]
mod tests {
    use crate::pii::PiiKind;
    use crate::pii::tests::{none, only};

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
}
