//! The scanning helpers every detector shares, and the one digit-run scanner through which
//! payment cards, IPv4 addresses and national phone numbers read their digits.
//!
//! All positions passed around are byte offsets of ASCII characters (or the end of the text),
//! hence char boundaries; `get` keeps even a wrong offset from panicking.

/// The character that ends just before byte `i`.
pub(super) fn prev_char(text: &str, i: usize) -> Option<char> {
    text.get(..i)?.chars().next_back()
}

/// The character that starts at byte `i`.
pub(super) fn next_char(text: &str, i: usize) -> Option<char> {
    text.get(i..)?.chars().next()
}

/// Whether `c` is part of a word (a letter, a digit of any script, or `_`).
pub(super) fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Whether byte `i` exists and is an ASCII digit.
pub(super) fn is_digit_at(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(u8::is_ascii_digit)
}

fn is_number_joiner(c: u8) -> bool {
    matches!(c, b'.' | b',' | b'/' | b':' | b'-')
}

/// Whether the number starting at `i` continues a digit before it through `. , / : -`.
pub(super) fn digit_joined_before(b: &[u8], i: usize) -> bool {
    i >= 2 && is_number_joiner(b[i - 1]) && b[i - 2].is_ascii_digit()
}

/// Whether the number ending at `end` continues into a digit after it through `. , / : -`.
pub(super) fn digit_joined_after(b: &[u8], end: usize) -> bool {
    b.get(end).is_some_and(|&c| is_number_joiner(c)) && is_digit_at(b, end + 1)
}

/// End of the run of ASCII digits starting at `i`.
pub(super) fn digits_end(b: &[u8], mut i: usize) -> usize {
    while is_digit_at(b, i) {
        i += 1;
    }
    i
}

/// Whether every separator in `seps` is the same byte.
pub(super) fn all_same(seps: &[u8]) -> bool {
    seps.windows(2).all(|w| w[0] == w[1])
}

/// The digit values of `groups`, in order.
pub(super) fn group_digits(b: &[u8], groups: &[(usize, usize)]) -> Vec<u8> {
    groups
        .iter()
        .flat_map(|&(s, e)| b[s..e].iter().map(|d| d - b'0'))
        .collect()
}

/// Groups of ASCII digits joined by single separators, the shape of "4111 1111 1111 1111",
/// "192.168.1.1" and "555-123-4567".
#[derive(Debug)]
pub(super) struct DigitRun {
    /// Byte range (start, end) of each group, in order; never empty.
    pub(super) groups: Vec<(usize, usize)>,
    /// The separator between each group and the next.
    pub(super) joins: Vec<u8>,
}

impl DigitRun {
    /// The run that starts at the digit at `i`: digit groups joined by single separators from
    /// `seps` (a separator counts only when a digit follows it).
    pub(super) fn read(b: &[u8], i: usize, seps: &[u8]) -> Self {
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
        Self { groups, joins }
    }

    /// Where the run starts.
    pub(super) fn start(&self) -> usize {
        self.groups.first().map_or(0, |g| g.0)
    }

    /// Where the run ends: the end of its last group.
    pub(super) fn end(&self) -> usize {
        self.groups.last().map_or(0, |g| g.1)
    }

    /// Keeps only the leading groups joined by the first separator, so one separator kind is
    /// used throughout what is left.
    pub(super) fn cut_at_separator_change(&mut self) {
        let same = self
            .joins
            .iter()
            .take_while(|&&c| Some(&c) == self.joins.first())
            .count();
        self.joins.truncate(same);
        self.groups.truncate(same + 1);
    }
}

/// Every digit run of the text `b`, left to right: each read with [`DigitRun::read`] from its
/// first digit, the next one looked for from where the previous one ends.
pub(super) fn digit_runs<'a>(b: &'a [u8], seps: &'a [u8]) -> impl Iterator<Item = DigitRun> + 'a {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() && !b[i].is_ascii_digit() {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        let run = DigitRun::read(b, i, seps);
        i = run.end();
        Some(run)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_runs_read_groups_and_separators() {
        let text = b"a 4111 1111-22 x 1.2.3 7- 8";
        let runs: Vec<_> = digit_runs(text, b" -")
            .map(|r| (r.groups, r.joins))
            .collect();
        assert_eq!(
            runs,
            vec![
                (vec![(2, 6), (7, 11), (12, 14)], b" -".to_vec()),
                (vec![(17, 18)], vec![]),
                (vec![(19, 20)], vec![]),
                (vec![(21, 22), (23, 24)], b" ".to_vec()),
                (vec![(26, 27)], vec![]),
            ]
        );
    }

    #[test]
    fn a_run_is_cut_where_its_separator_changes() {
        let mut run = DigitRun::read(b"555-123-4567.8", 0, b" -.");
        assert_eq!(run.joins, b"--.");
        run.cut_at_separator_change();
        assert_eq!((run.start(), run.end()), (0, 12));
        assert_eq!(run.joins, b"--");
        let mut single = DigitRun::read(b"5551234567", 0, b" -.");
        single.cut_at_separator_change();
        assert_eq!(single.groups, vec![(0, 10)]);
    }
}
