//! Label cells read as the targets of the other tasks: numbers for regression, label sets for
//! multi-label classification. (Single-label classes are [`crate::into_classification`]'s.)

use std::collections::BTreeMap;

use crate::DataError;

/// Parses every label cell as a finite number (regression targets).
///
/// Surrounding whitespace is ignored; anything else that is not a number — text, `NaN`,
/// infinity — is an error naming the data row (1-based, in file order) and the value.
pub fn parse_values(labels: &[String], column: &str) -> Result<Vec<f32>, DataError> {
    labels
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            let value = cell.trim();
            match value.parse::<f64>() {
                Ok(v) if v.is_finite() && v.abs() <= f64::from(f32::MAX) => Ok(v as f32),
                _ => Err(DataError::NotANumber {
                    row: i + 1,
                    column: column.to_owned(),
                    value: value.chars().take(40).collect(),
                }),
            }
        })
        .collect()
}

/// Label sets of a multi-label column: each cell lists its labels separated by `separator`
/// (blank parts ignored, so an empty cell is a row with no label). Returns each row's label
/// indices (sorted, without repeats) and the label names, sorted.
pub fn parse_label_sets(
    labels: &[String],
    separator: &str,
    column: &str,
) -> Result<(Vec<Vec<usize>>, Vec<String>), DataError> {
    let split = |cell: &str| -> Vec<String> {
        cell.split(separator)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for cell in labels {
        for name in split(cell) {
            names.entry(name).or_insert(0);
        }
    }
    if names.is_empty() {
        return Err(DataError::NoLabelsInColumn {
            column: column.to_owned(),
            separator: separator.to_owned(),
        });
    }
    for (index, slot) in names.values_mut().enumerate() {
        *slot = index;
    }
    let sets = labels
        .iter()
        .map(|cell| {
            let mut set: Vec<usize> = split(cell)
                .iter()
                .filter_map(|name| names.get(name).copied())
                .collect();
            set.sort_unstable();
            set.dedup();
            set
        })
        .collect();
    Ok((sets, names.into_keys().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn numbers_parse_and_bad_cells_are_named() {
        let v = parse_values(&strings(&["0.5", " 3 ", "-1e-3"]), "score").expect("numbers");
        assert_eq!(v, vec![0.5, 3.0, -0.001]);
        let err = parse_values(&strings(&["1", "high"]), "score").unwrap_err();
        assert_eq!(
            err.to_string(),
            "data row 2: column `score` holds `high`, not a number; a regression target must \
             be a finite number"
        );
        assert!(parse_values(&strings(&["NaN"]), "score").is_err());
        assert!(parse_values(&strings(&["inf"]), "score").is_err());
    }

    #[test]
    fn label_sets_split_sort_and_dedupe() {
        let (sets, names) =
            parse_label_sets(&strings(&["b|a", "", "c | a|a", "b"]), "|", "tags").expect("sets");
        assert_eq!(names, strings(&["a", "b", "c"]));
        assert_eq!(sets, vec![vec![0, 1], vec![], vec![0, 2], vec![1]]);
        let err = parse_label_sets(&strings(&["", " "]), "|", "tags").unwrap_err();
        assert!(err.to_string().contains("no labels"), "{err}");
    }
}
