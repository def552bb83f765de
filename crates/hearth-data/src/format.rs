//! Which file format a dataset is in, from its name or from the user's say-so.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::Serialize;

use crate::DataError;

/// The file formats a dataset can be read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// Delimited values with a header row; the delimiter (`,` `;` `|` or tab) is sniffed from
    /// the first lines.
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
    /// One JSON object per line (also called NDJSON).
    Jsonl,
    /// One JSON array of objects.
    Json,
    /// Plain text, one example per non-blank line, without labels (for inspection).
    Text,
}

impl DataFormat {
    /// Guesses the format from a file name's extension (case-insensitive): `.csv`, `.tsv`
    /// (or `.tab`), `.jsonl` (or `.ndjson`), `.json`, `.txt`. Anything else is `None`, because
    /// guessing wrong would produce confusing parse errors later.
    pub fn from_extension(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        ext.parse().ok()
    }

    /// Whether rows of this format can carry a label.
    pub fn has_columns(self) -> bool {
        !matches!(self, Self::Text)
    }

    /// The format given explicitly, if any, or else the one the file name implies.
    pub fn resolve(explicit: Option<Self>, path: &Path) -> Result<Self, DataError> {
        match explicit {
            Some(format) => Ok(format),
            None => Self::from_extension(path).ok_or_else(|| DataError::UnknownExtension {
                name: path.display().to_string(),
            }),
        }
    }
}

impl fmt::Display for DataFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Csv => "csv",
            Self::Tsv => "tsv",
            Self::Jsonl => "jsonl",
            Self::Json => "json",
            Self::Text => "text",
        })
    }
}

/// Parses the names a user would type on a command line (and file extensions): `csv`, `tsv`,
/// `tab`, `jsonl`, `ndjson`, `json`, `text`, `txt`.
impl FromStr for DataFormat {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Self::Csv),
            "tsv" | "tab" => Ok(Self::Tsv),
            "jsonl" | "ndjson" => Ok(Self::Jsonl),
            "json" => Ok(Self::Json),
            "text" | "txt" => Ok(Self::Text),
            _ => Err(DataError::UnknownFormatName { name: s.to_owned() }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A failed unwrap is the report a failing test should give.
mod tests {
    use super::*;

    #[test]
    fn extensions_map_to_formats() {
        assert_eq!(
            DataFormat::from_extension(Path::new("a/b.csv")),
            Some(DataFormat::Csv)
        );
        assert_eq!(
            DataFormat::from_extension(Path::new("b.CSV")),
            Some(DataFormat::Csv)
        );
        assert_eq!(
            DataFormat::from_extension(Path::new("b.jsonl")),
            Some(DataFormat::Jsonl)
        );
        assert_eq!(
            DataFormat::from_extension(Path::new("b.ndjson")),
            Some(DataFormat::Jsonl)
        );
        assert_eq!(
            DataFormat::from_extension(Path::new("b.txt")),
            Some(DataFormat::Text)
        );
        assert_eq!(
            DataFormat::from_extension(Path::new("b.tsv")),
            Some(DataFormat::Tsv)
        );
        assert_eq!(
            DataFormat::from_extension(Path::new("b.json")),
            Some(DataFormat::Json)
        );
        assert_eq!(DataFormat::from_extension(Path::new("b.parquet")), None);
        assert_eq!(DataFormat::from_extension(Path::new("noext")), None);
    }

    #[test]
    fn an_explicit_format_overrides_the_extension() {
        let path = Path::new("data.dat");
        assert_eq!(
            DataFormat::resolve(Some(DataFormat::Jsonl), path).unwrap(),
            DataFormat::Jsonl
        );
        let err = DataFormat::resolve(None, path).unwrap_err().to_string();
        assert!(err.contains("data.dat"), "{err}");
    }

    #[test]
    fn names_parse_and_display_round_trip() {
        for format in [
            DataFormat::Csv,
            DataFormat::Tsv,
            DataFormat::Jsonl,
            DataFormat::Json,
            DataFormat::Text,
        ] {
            assert_eq!(format.to_string().parse::<DataFormat>().unwrap(), format);
        }
        assert_eq!("NDJSON".parse::<DataFormat>().unwrap(), DataFormat::Jsonl);
        let err = "parquet".parse::<DataFormat>().unwrap_err().to_string();
        assert!(err.contains("`parquet`"), "{err}");
    }
}
