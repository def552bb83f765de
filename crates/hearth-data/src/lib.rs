//! Loading, inspecting, cleaning and splitting of text-classification datasets for Hearth.
//!
//! A dataset is a CSV/TSV, JSONL or JSON file with one text column and one label column (or
//! plain text, one example a line, for inspection). The [`quality`] report says what in it
//! would hurt fine-tuning; [`clean`], [`stratified_split`] and [`augment`] act on it. This crate
//! decodes it (UTF-8, or latin-1 as a stated fallback), turns the labels into indices into a
//! sorted list of class names, and splits the rows into train and evaluation sets with the very
//! permutation Python's `random.Random(seed).shuffle` produces, so a run here and a run of the
//! PyTorch reference see the same rows. The core functions take bytes, not paths, so the crate
//! also works in the browser (wasm32); `load_path` is only a convenience for native callers.
//!
//! Beside labelled texts, [`chat`] reads the conversations a chat model is fine-tuned on, and
//! [`stream`] reads a file in chunks, so a file too large to hold can still be inspected.

pub mod augment;
pub mod chat;
pub mod clean;
mod columns;
mod decode;
mod error;
mod format;
mod hash;
mod load;
pub mod mojibake;
pub mod neardup;
pub mod pii;
mod pyrandom;
pub mod quality;
mod split;
pub mod stream;
mod targets;

pub use columns::{Columns, detect_columns};
pub use decode::{TextEncoding, decode_text};
pub use error::{DataError, NAME_CHARS, RowRef, shown, shown_list};
pub use format::DataFormat;
pub use load::{
    Dataset, LoadReport, RawRows, into_classification, load_classification, load_path, load_rows,
    load_rows_with, sniff_delimiter,
};
pub use pyrandom::{PythonRandom, python_shuffle_indices};
pub use split::{Split, StratifiedSplit, duplicate_groups, holdout_split, stratified_split};
pub use targets::{parse_label_sets, parse_values};
