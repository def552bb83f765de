//! Payment card numbers: 13 to 19 digits that pass the Luhn check, read as a digit run (the rule
//! is in the module header of [`crate::pii`]).

use super::scan::{
    DigitRun, all_same, digit_joined_after, digit_joined_before, digit_runs, group_digits, is_word,
    next_char, prev_char,
};
use super::{PiiKind, PiiMatch, push};

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

/// Every payment card number in `text`: a whole digit run joined by spaces or hyphens, or,
/// where the whole run is not a card, its parts laid out like one.
pub(super) fn find(text: &str, out: &mut Vec<PiiMatch>) {
    let b = text.as_bytes();
    for run in digit_runs(b, b" -") {
        let (i, run_end) = (run.start(), run.end());
        let DigitRun {
            groups,
            joins: seps,
        } = run;
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
    }
}

#[cfg(test)]
mod tests {
    use super::luhn_valid;
    use crate::pii::PiiKind;
    use crate::pii::tests::{none, only};

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
}
