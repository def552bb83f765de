//! Reading a dataset file in chunks, so that inspecting a 1 GB file never needs the file (or
//! its texts) in memory at once: the page hands the worker slices of the `File`, the CLI reads
//! 8 MiB at a time.
//!
//! Two passes, as the whole-file rule of [`crate::decode_text`] needs: [`EncodingSniffer`]
//! sees every chunk once and decides the encoding exactly as `decode_text` would (byte-order
//! mark, else UTF-8 if every byte is valid UTF-8, else latin-1); [`RowStream`] then decodes and
//! parses the chunks again, handing each complete row to a callback, and keeps only the
//! incomplete tail between chunks. CSV/TSV, JSONL and plain text stream; a JSON array is held
//! whole until it ends (use JSONL for large files).

use crate::{DataError, DataFormat, LoadReport, TextEncoding, sniff_delimiter};

/// Pass 1: decides a file's encoding from its chunks.
#[derive(Debug, Default)]
pub struct EncodingSniffer {
    head: Vec<u8>,
    carry: Vec<u8>,
    invalid: bool,
    bytes: u64,
}

impl EncodingSniffer {
    /// A sniffer that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes seen.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Sees the next chunk.
    pub fn push(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        if self.head.len() < 3 {
            let take = (3 - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        if self.invalid {
            return;
        }
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(chunk);
        match std::str::from_utf8(&data) {
            Ok(_) => {}
            // An incomplete sequence at the very end may complete in the next chunk.
            Err(e) if e.error_len().is_none() => {
                self.carry = data[e.valid_up_to()..].to_vec();
            }
            Err(_) => self.invalid = true,
        }
    }

    /// The encoding [`crate::decode_text`] would choose for the whole file.
    pub fn finish(self) -> TextEncoding {
        match self.head.as_slice() {
            [0xFF, 0xFE, ..] => TextEncoding::Utf16Le,
            [0xFE, 0xFF, ..] => TextEncoding::Utf16Be,
            _ if self.invalid || !self.carry.is_empty() => TextEncoding::Latin1Fallback,
            [0xEF, 0xBB, 0xBF, ..] => TextEncoding::Utf8Bom,
            _ => TextEncoding::Utf8,
        }
    }
}

/// Turns chunks of bytes into text in a decided encoding, carrying split sequences over.
#[derive(Debug)]
struct Decoder {
    encoding: TextEncoding,
    carry: Vec<u8>,
    started: bool,
}

impl Decoder {
    fn decode(&mut self, chunk: &[u8], last: bool, out: &mut String) {
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(chunk);
        let mut bytes: &[u8] = &data;
        if !self.started {
            let bom: &[u8] = match self.encoding {
                TextEncoding::Utf16Le | TextEncoding::Utf16Be => &[0, 0],
                TextEncoding::Utf8Bom => &[0, 0, 0],
                _ => &[],
            };
            if bytes.len() < bom.len() && !last {
                self.carry = data;
                return;
            }
            bytes = &bytes[bom.len().min(bytes.len())..];
            self.started = true;
        }
        match self.encoding {
            TextEncoding::Latin1Fallback => out.extend(bytes.iter().map(|&b| char::from(b))),
            TextEncoding::Utf8 | TextEncoding::Utf8Bom => {
                let mut rest = bytes;
                loop {
                    match std::str::from_utf8(rest) {
                        Ok(text) => {
                            out.push_str(text);
                            break;
                        }
                        Err(e) => {
                            let (good, bad) = rest.split_at(e.valid_up_to());
                            out.push_str(std::str::from_utf8(good).unwrap_or_default());
                            match e.error_len() {
                                None if !last => {
                                    self.carry = bad.to_vec();
                                    break;
                                }
                                // Cannot happen after the sniffer said UTF-8; never panic.
                                _ => {
                                    out.push(char::REPLACEMENT_CHARACTER);
                                    let skip = e.error_len().unwrap_or(bad.len()).max(1);
                                    rest = &bad[skip.min(bad.len())..];
                                    if rest.is_empty() {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            TextEncoding::Utf16Le | TextEncoding::Utf16Be => {
                let le = self.encoding == TextEncoding::Utf16Le;
                let whole = bytes.len() / 2 * 2;
                let mut units: Vec<u16> = bytes[..whole]
                    .chunks_exact(2)
                    .map(|p| {
                        if le {
                            u16::from_le_bytes([p[0], p[1]])
                        } else {
                            u16::from_be_bytes([p[0], p[1]])
                        }
                    })
                    .collect();
                let mut carry = bytes[whole..].to_vec();
                // A high surrogate at the end waits for its pair.
                if !last && units.last().is_some_and(|u| (0xD800..0xDC00).contains(u)) {
                    let unit = units.pop().unwrap_or_default();
                    let mut pair = if le {
                        unit.to_le_bytes().to_vec()
                    } else {
                        unit.to_be_bytes().to_vec()
                    };
                    pair.extend_from_slice(&carry);
                    carry = pair;
                }
                out.extend(
                    char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)),
                );
                if last {
                    if !carry.is_empty() {
                        out.push(char::REPLACEMENT_CHARACTER);
                    }
                } else {
                    self.carry = carry;
                }
            }
        }
    }
}

/// Where a CSV stream stands.
#[derive(Debug)]
struct CsvState {
    delimiter: u8,
    text: usize,
    label: Option<usize>,
    fields: usize,
}

/// Pass 2: the rows of a file fed in chunks.
#[derive(Debug)]
pub struct RowStream {
    format: DataFormat,
    decoder: Decoder,
    text_column: String,
    label_column: Option<String>,
    buf: String,
    /// How far `buf` was scanned for record ends, and whether that point is inside quotes.
    scanned: usize,
    quoted: bool,
    csv: Option<CsvState>,
    /// Lines before `buf`, for error messages.
    lines_before: usize,
    rows: usize,
    fallback_rows: usize,
}

impl RowStream {
    /// A stream of `format` rows in `encoding` (from [`EncodingSniffer`]).
    pub fn new(
        format: DataFormat,
        encoding: TextEncoding,
        text_column: &str,
        label_column: Option<&str>,
    ) -> Self {
        Self {
            format,
            decoder: Decoder {
                encoding,
                carry: Vec::new(),
                started: false,
            },
            text_column: text_column.to_string(),
            label_column: if format.has_columns() {
                label_column.map(str::to_string)
            } else {
                None
            },
            buf: String::new(),
            scanned: 0,
            quoted: false,
            csv: None,
            lines_before: 0,
            rows: 0,
            fallback_rows: 0,
        }
    }

    /// Rows handed out so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Decodes the next chunk and hands every row it completes to `row(text, label)`.
    pub fn push(
        &mut self,
        chunk: &[u8],
        row: &mut dyn FnMut(&str, Option<&str>),
    ) -> Result<(), DataError> {
        self.decoder.decode(chunk, false, &mut self.buf);
        self.drain(false, row)
    }

    /// Ends the stream: the last rows, and what loading found out.
    pub fn finish(
        mut self,
        row: &mut dyn FnMut(&str, Option<&str>),
    ) -> Result<LoadReport, DataError> {
        self.decoder.decode(&[], true, &mut self.buf);
        self.drain(true, row)?;
        if self.rows == 0 {
            return Err(DataError::NoDataRows {
                reason: "no rows were found in it",
            });
        }
        Ok(LoadReport {
            rows: self.rows,
            encoding: self.decoder.encoding,
            fallback_rows: self.fallback_rows,
            skipped_unlabeled: 0,
        })
    }

    /// The end of the last complete record in `buf` (after its newline).
    fn complete_end(&mut self, last: bool) -> usize {
        if last {
            return self.buf.len();
        }
        let csv = matches!(self.format, DataFormat::Csv | DataFormat::Tsv);
        let bytes = self.buf.as_bytes();
        let mut end = 0;
        for (i, &b) in bytes.iter().enumerate().skip(self.scanned) {
            if csv && b == b'"' {
                self.quoted = !self.quoted;
            } else if b == b'\n' && !self.quoted {
                end = i + 1;
            }
        }
        self.scanned = bytes.len();
        end
    }

    /// Hands out one row; `non_ascii` says whether its record held a byte above 0x7F.
    fn emit(
        &mut self,
        text: &str,
        label: Option<&str>,
        non_ascii: bool,
        row: &mut dyn FnMut(&str, Option<&str>),
    ) {
        self.rows += 1;
        if self.decoder.encoding == TextEncoding::Latin1Fallback && non_ascii {
            self.fallback_rows += 1;
        }
        row(text, label);
    }

    fn drain(
        &mut self,
        last: bool,
        row: &mut dyn FnMut(&str, Option<&str>),
    ) -> Result<(), DataError> {
        if self.format == DataFormat::Json {
            if last {
                let text = std::mem::take(&mut self.buf);
                let rows = crate::load_rows(
                    text.as_bytes(),
                    DataFormat::Json,
                    &self.text_column,
                    self.label_column.as_deref(),
                )?;
                for (i, t) in rows.texts.iter().enumerate() {
                    let label = rows.labels.as_ref().and_then(|l| l.get(i)).cloned();
                    let non_ascii =
                        !t.is_ascii() || label.as_deref().is_some_and(|l| !l.is_ascii());
                    self.emit(t, label.as_deref(), non_ascii, row);
                }
            }
            return Ok(());
        }
        let end = self.complete_end(last);
        if end == 0 {
            return Ok(());
        }
        let block: String = self.buf.drain(..end).collect();
        self.scanned -= end.min(self.scanned);
        match self.format {
            DataFormat::Csv | DataFormat::Tsv => self.csv_block(&block, row)?,
            _ => self.line_block(&block, row)?,
        }
        self.lines_before += block.matches('\n').count();
        Ok(())
    }

    fn line_block(
        &mut self,
        block: &str,
        row: &mut dyn FnMut(&str, Option<&str>),
    ) -> Result<(), DataError> {
        for (offset, line) in block.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let line_no = self.lines_before + offset + 1;
            if self.format == DataFormat::Text {
                self.emit(line, None, !line.is_ascii(), row);
                continue;
            }
            let one = crate::load_rows(
                line.as_bytes(),
                DataFormat::Jsonl,
                &self.text_column,
                self.label_column.as_deref(),
            )
            .map_err(|e| renumber(e, line_no))?;
            let label = one.labels.as_ref().and_then(|l| l.first()).cloned();
            if let Some(text) = one.texts.first() {
                self.emit(text, label.as_deref(), !line.is_ascii(), row);
            }
        }
        Ok(())
    }

    fn csv_block(
        &mut self,
        block: &str,
        row: &mut dyn FnMut(&str, Option<&str>),
    ) -> Result<(), DataError> {
        let first = self.csv.is_none();
        let delimiter = match &self.csv {
            Some(state) => state.delimiter,
            None if self.format == DataFormat::Tsv => b'\t',
            None => sniff_delimiter(block),
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(first)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(block.as_bytes());
        if first {
            let headers = reader.headers()?.clone();
            if headers.is_empty() {
                return Ok(());
            }
            let find = |column: &str| crate::load::column_index(&headers, column);
            self.csv = Some(CsvState {
                delimiter,
                text: find(&self.text_column)?,
                label: self.label_column.as_deref().map(find).transpose()?,
                fields: headers.len(),
            });
        }
        let Some(state) = &self.csv else {
            return Ok(());
        };
        let (text_at, label_at, fields) = (state.text, state.label, state.fields);
        for record in reader.records() {
            let record = record.map_err(|e| DataError::CsvAt {
                line: self.lines_before + e.position().map_or(0, |p| p.line() as usize),
                message: e.to_string(),
            })?;
            let line = self.lines_before + record.position().map_or(0, |p| p.line() as usize);
            if record.len() != fields {
                return Err(DataError::CsvAt {
                    line,
                    message: format!(
                        "the record has {} fields, the header {fields}",
                        record.len()
                    ),
                });
            }
            let label = match label_at {
                None => None,
                Some(i) => {
                    let l = record.get(i).unwrap_or_default();
                    if l.trim().is_empty() {
                        return Err(DataError::MissingLabel {
                            at: crate::RowRef::CsvRow {
                                row: self.rows as u64 + 1,
                                line: line as u64,
                            },
                            column: self.label_column.clone().unwrap_or_default(),
                        });
                    }
                    Some(l.to_string())
                }
            };
            let text = record.get(text_at).unwrap_or_default().to_string();
            let non_ascii = record.iter().any(|field| !field.is_ascii());
            self.emit(&text, label.as_deref(), non_ascii, row);
        }
        Ok(())
    }
}

/// A one-line JSONL error, renumbered to the line it came from.
fn renumber(error: DataError, line: usize) -> DataError {
    match error {
        DataError::Json { source, .. } => DataError::Json { line, source },
        DataError::NotAnObject { found, .. } => DataError::NotAnObject { line, found },
        DataError::MissingKey { column, found, .. } => DataError::MissingKey {
            column,
            line,
            found,
        },
        DataError::MissingLabel { column, .. } => DataError::MissingLabel {
            at: crate::RowRef::JsonlLine { line },
            column,
        },
        DataError::UnsupportedLabel { column, found, .. } => DataError::UnsupportedLabel {
            at: crate::RowRef::JsonlLine { line },
            column,
            found,
        },
        DataError::UnsupportedText { column, found, .. } => DataError::UnsupportedText {
            at: crate::RowRef::JsonlLine { line },
            column,
            found,
        },
        other => other,
    }
}

/// Reads `chunks` (called twice: once per pass) and streams every row to `row`.
pub fn stream_rows<I: IntoIterator<Item = Vec<u8>>>(
    mut chunks: impl FnMut() -> I,
    format: DataFormat,
    text_column: &str,
    label_column: Option<&str>,
    row: &mut dyn FnMut(&str, Option<&str>),
) -> Result<LoadReport, DataError> {
    let mut sniffer = EncodingSniffer::new();
    for chunk in chunks() {
        sniffer.push(&chunk);
    }
    let mut stream = RowStream::new(format, sniffer.finish(), text_column, label_column);
    for chunk in chunks() {
        stream.push(&chunk, row)?;
    }
    stream.finish(row)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Streams `bytes` in chunks of `size` and collects the rows.
    fn rows(
        bytes: &[u8],
        size: usize,
        format: DataFormat,
    ) -> (Vec<(String, Option<String>)>, LoadReport) {
        let mut out = Vec::new();
        let report = stream_rows(
            || bytes.chunks(size).map(<[u8]>::to_vec).collect::<Vec<_>>(),
            format,
            "text",
            Some("label"),
            &mut |t, l| out.push((t.to_string(), l.map(str::to_string))),
        )
        .unwrap();
        (out, report)
    }

    #[test]
    fn every_chunk_size_gives_the_rows_of_the_whole_file() {
        let files: Vec<(&[u8], DataFormat)> = vec![
            (
                "text,label\n\"a, \"\"quoted\"\"\nline\",x\ncafé 🚗,y\r\nplain,x\n".as_bytes(),
                DataFormat::Csv,
            ),
            (b"text;label\nsemi;colon\nx;y\n", DataFormat::Csv),
            (b"text\tlabel\ncaf\xe9\tx\nb\ty\n", DataFormat::Tsv),
            (
                "{\"text\": \"é 🚗\", \"label\": 1}\n\n{\"text\": \"b\", \"label\": \"y\"}\n"
                    .as_bytes(),
                DataFormat::Jsonl,
            ),
            (
                "[{\"text\": \"a\", \"label\": \"x\"}, {\"text\": \"b\", \"label\": \"y\"}]"
                    .as_bytes(),
                DataFormat::Json,
            ),
        ];
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "text,label\n🚗 é,x\nb,y\n"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        let bom: Vec<u8> = b"\xef\xbb\xbftext,label\n\xc3\xa9,x\nb,y".to_vec();
        let mut all = files;
        all.push((&utf16, DataFormat::Csv));
        all.push((&bom, DataFormat::Csv));
        for (bytes, format) in all {
            let whole = crate::load_rows(bytes, format, "text", Some("label")).unwrap();
            for size in [1, 2, 3, 5, 7, 64, 4096] {
                let (got, report) = rows(bytes, size, format);
                let texts: Vec<String> = got.iter().map(|r| r.0.clone()).collect();
                let labels: Vec<String> = got.iter().map(|r| r.1.clone().unwrap()).collect();
                assert_eq!(texts, whole.texts, "{format} by {size}");
                assert_eq!(Some(labels), whole.labels, "{format} by {size}");
                assert_eq!(report, whole.report, "{format} by {size}");
            }
        }
    }

    #[test]
    fn errors_name_the_line_of_the_file() {
        let bytes = b"text,label\na,x\nb,y\nc\nd,x\n";
        let err = stream_rows(
            || bytes.chunks(4).map(<[u8]>::to_vec).collect::<Vec<_>>(),
            DataFormat::Csv,
            "text",
            Some("label"),
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("line 4"), "{err}");
        let bytes = b"{\"text\": \"a\", \"label\": 1}\n{oops\n";
        let err = stream_rows(
            || bytes.chunks(3).map(<[u8]>::to_vec).collect::<Vec<_>>(),
            DataFormat::Jsonl,
            "text",
            Some("label"),
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("line 2 "), "{err}");
    }
}
