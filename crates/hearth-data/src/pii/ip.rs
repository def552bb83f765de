//! IP addresses: IPv4 dotted quads, read as a digit run joined by dots, and IPv6 addresses
//! in full or compressed form (the rule is in the module header of [`crate::pii`]). The
//! standard library's parsers have the last word on whether a candidate is an address.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::scan::{digit_runs, is_word, next_char, prev_char};
use super::{PiiKind, PiiMatch, push};

/// Every IP address in `text`, IPv4 then IPv6.
pub(super) fn find(text: &str, out: &mut Vec<PiiMatch>) {
    find_ipv4(text, out);
    find_ipv6(text, out);
}

/// Every IPv4 address in `text` that is not part of a longer dotted number.
fn find_ipv4(text: &str, out: &mut Vec<PiiMatch>) {
    let b = text.as_bytes();
    for run in digit_runs(b, b".") {
        let (i, end) = (run.start(), run.end());
        let dotted_before = i >= 2 && b[i - 1] == b'.' && b[i - 2].is_ascii_digit();
        if run.groups.len() == 4
            && !dotted_before
            && !is_word(prev_char(text, i))
            && !is_word(next_char(text, end))
            && text
                .get(i..end)
                .is_some_and(|s| s.parse::<Ipv4Addr>().is_ok())
        {
            push(out, PiiKind::IpAddress, i, end);
        }
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

/// Every IPv6 address in `text` that identifies a host.
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

#[cfg(test)]
mod tests {
    use crate::pii::PiiKind;
    use crate::pii::tests::{none, only};

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
}
