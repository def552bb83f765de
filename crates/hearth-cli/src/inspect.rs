//! `hearth inspect`: the data-quality report, optional cleaning and a stratified split.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use hearth_data::clean::{self, CleanOptions, ConflictPolicy, Dedupe};
use hearth_data::quality::{self, InspectOptions, QualityReport, Severity};
use hearth_data::{DataFormat, RawRows};
use hearth_models::tokenizer::TokenCounter;

use crate::args::{CleanStep, InspectArgs};
use crate::files;

/// The columns to read: the given ones, else the detected ones.
fn columns(
    args: &InspectArgs,
    bytes: &[u8],
    format: DataFormat,
) -> Result<(String, Option<String>)> {
    if !format.has_columns() {
        return Ok(("text".into(), None));
    }
    let detected = hearth_data::detect_columns(bytes, format)?;
    let text = match (&args.text_column, &detected.text) {
        (Some(t), _) => t.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => bail!(
            "give --text-column; the file has columns {}",
            hearth_data::shown_list(&detected.names)
        ),
    };
    let label = if args.no_labels {
        None
    } else {
        args.label_column.clone().or(detected.label)
    };
    Ok((text, label))
}

/// The file's format and columns as the flags say (columns detected from its first MiB).
fn plan(args: &InspectArgs) -> Result<(DataFormat, String, Option<String>)> {
    let explicit = args.format.as_deref().map(str::parse).transpose()?;
    let format = DataFormat::resolve(explicit, Path::new(&args.file))?;
    let mut head = Vec::new();
    let file =
        std::fs::File::open(&args.file).with_context(|| format!("cannot read {}", args.file))?;
    // A JSON array must be read whole to be parsed; the other formats show their columns early.
    let limit = if format == DataFormat::Json {
        u64::MAX
    } else {
        1 << 20
    };
    file.take(limit)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", args.file))?;
    let (text, label) = columns(args, &head, format)?;
    Ok((format, text, label))
}

/// Loads all rows (for cleaning and splitting, which need them).
fn load_all(
    args: &InspectArgs,
    format: DataFormat,
    text: &str,
    label: Option<&str>,
) -> Result<RawRows> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file))?;
    hearth_data::load_rows(&bytes, format, text, label)
        .with_context(|| format!("loading {}", args.file))
}

/// The file in 8 MiB chunks; a read error ends the chunks and is kept for the caller.
struct Chunks {
    file: Option<std::io::BufReader<std::fs::File>>,
    error: std::rc::Rc<std::cell::RefCell<Option<std::io::Error>>>,
}

impl Iterator for Chunks {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let file = self.file.as_mut()?;
        let mut chunk = Vec::with_capacity(CHUNK);
        match file.take(CHUNK as u64).read_to_end(&mut chunk) {
            Ok(0) => None,
            Ok(_) => Some(chunk),
            Err(e) => {
                *self.error.borrow_mut() = Some(e);
                None
            }
        }
    }
}

const CHUNK: usize = 8 << 20;

/// `writeln!` into a `String`, which cannot fail.
macro_rules! outln {
    ($out:expr) => {
        writeln!($out).unwrap_or_default()
    };
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).unwrap_or_default()
    };
}

/// The file's format, and whether it holds conversations (its columns or keys say so and no
/// text column was given).
fn chat_format(args: &InspectArgs) -> Result<Option<DataFormat>> {
    let explicit = args.format.as_deref().map(str::parse).transpose()?;
    let format = DataFormat::resolve(explicit, Path::new(&args.file))?;
    if args.text_column.is_some() || !format.has_columns() {
        return Ok(None);
    }
    let mut head = Vec::new();
    let file =
        std::fs::File::open(&args.file).with_context(|| format!("cannot read {}", args.file))?;
    let limit = if format == DataFormat::Json {
        u64::MAX
    } else {
        1 << 20
    };
    file.take(limit)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", args.file))?;
    // A file whose columns cannot be detected is left to the text report's error.
    let chat = hearth_data::detect_columns(&head, format)
        .is_ok_and(|c| hearth_data::chat::is_conversations(&c.names));
    Ok(chat.then_some(format))
}

/// A chat model's tokenizer and template for the token figures: a `.gguf` file, or a
/// directory with `tokenizer.json` (and `tokenizer_config.json`, `chat_template.jinja`).
fn chat_tokenizer(path: &str) -> Result<hearth_models::lm_tokenizer::LmTokenizer> {
    let path = Path::new(path);
    let mut named = Vec::new();
    if path.is_dir() {
        for name in [
            "tokenizer.json",
            "tokenizer_config.json",
            "chat_template.jinja",
        ] {
            if let Ok(bytes) = std::fs::read(path.join(name)) {
                named.push((name.to_string(), bytes));
            }
        }
    } else {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        named.push((path.display().to_string(), bytes));
    }
    hearth_models::chat_model::tokenizer_from_named(&named)
        .with_context(|| format!("reading the chat model's tokenizer in {}", path.display()))
}

/// `hearth inspect` on conversations: the chat report.
fn run_chat(args: &InspectArgs, format: DataFormat) -> Result<()> {
    let started = std::time::Instant::now();
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file))?;
    let data = hearth_data::chat::read_conversations(&bytes, format)
        .with_context(|| format!("loading {}", args.file))?;
    let tokenizer = args.model.as_deref().map(chat_tokenizer).transpose()?;
    let options = InspectOptions {
        near: hearth_data::neardup::NearDupSettings {
            threshold: args.similarity,
            ..Default::default()
        },
        max_length: args.max_length,
        ..InspectOptions::default()
    };
    let measure = tokenizer.as_ref().map(|t| {
        move |turns: &[hearth_data::chat::Turn]| {
            hearth_train::sft::measure(t, turns, args.max_length).map_err(|e| e.to_string())
        }
    });
    let holdout = quality::planned_holdout(
        data.rows.len(),
        args.eval_rows,
        args.eval_fraction,
        args.seed,
    );
    let report = quality::inspect_chat(
        &data,
        holdout
            .as_ref()
            .map(|s| (s.train.as_slice(), s.eval.as_slice())),
        &options,
        measure.as_ref().map(|m| m as quality::ChatMeasure<'_>),
    );
    let seconds = started.elapsed().as_secs_f64();
    let mut out = String::new();
    if args.json {
        let json = serde_json::json!({
            "file": args.file,
            "chat": report,
            "seconds": seconds,
        });
        outln!(out, "{}", serde_json::to_string_pretty(&json)?);
    } else {
        print_chat_report(&mut out, &report, seconds);
    }
    crate::files::print_stdout(&out);
    Ok(())
}

fn print_chat_report(out: &mut String, r: &quality::ChatReport, seconds: f64) {
    outln!(
        out,
        "{} conversations in {} rows, encoding {:?}  ({seconds:.2} s)",
        r.conversations,
        r.rows,
        r.encoding
    );
    let t = &r.turns;
    outln!(
        out,
        "
turns per conversation: min {}  median {}  max {}  mean {:.1}",
        t.min,
        t.p50,
        t.max,
        t.mean
    );
    if let Some(t) = &r.tokens {
        let l = &t.lengths;
        outln!(
            out,
            "tokens after the chat template: min {}  median {}  p90 {}  p99 {}  max {}  mean {:.1}; \
             {} ({:.1}%) over {}",
            l.min,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            l.mean,
            t.longer.count,
            100.0 * t.longer_share,
            t.max_length
        );
        outln!(out, "at max length {}, by truncation policy:", t.max_length);
        for p in &t.policies {
            outln!(
                out,
                "  {:<12} {} whole, {} prompt cut, {} answer cut, {} dropped",
                p.truncation.name(),
                p.whole,
                p.prompt_cut,
                p.answer_cut,
                p.dropped
            );
        }
    }
    outln!(
        out, "
checks:"
    );
    let mut line = |name: &str, value: String| outln!(out, "  {name:<28} {value}");
    line("unreadable rows", r.unreadable.count.to_string());
    line("unknown roles", r.role_errors.count.to_string());
    line("turns out of order", r.role_order.count.to_string());
    line("empty turns", r.empty_turns.count.to_string());
    line("missing answers", r.missing_answers.count.to_string());
    line("empty answers", r.empty_answers.count.to_string());
    line(
        "duplicate prompts",
        format!(
            "{} groups, {} conversations, {} repeats",
            r.exact_duplicates.groups, r.exact_duplicates.rows, r.exact_duplicates.redundant
        ),
    );
    line(
        "folded duplicate prompts",
        format!(
            "{} groups, {} conversations",
            r.folded_duplicates.groups, r.folded_duplicates.rows
        ),
    );
    line(
        &format!("near-duplicates (≥ {})", r.near_settings.threshold),
        format!(
            "{} clusters, {} conversations",
            r.near_duplicates.groups, r.near_duplicates.rows
        ),
    );
    line(
        "same prompt, other answers",
        format!(
            "{} prompts, {} conversations",
            r.conflicting_answers.texts, r.conflicting_answers.rows
        ),
    );
    line(
        "personal data",
        format!("{} conversations", r.pii.rows.count),
    );
    if let Some(l) = &r.leakage {
        line(
            "held-out also in train",
            format!(
                "{} exact, {} folded, {} near",
                l.exact.count, l.folded.count, l.near.count
            ),
        );
    }
    print_findings(out, &r.findings);
}

/// The findings, most severe first, with their suggestions and example rows.
fn print_findings(out: &mut String, findings: &[quality::Finding]) {
    if findings.is_empty() {
        outln!(out, "\nno findings.");
        return;
    }
    outln!(out, "\nfindings:");
    for f in findings {
        let tag = match f.severity {
            Severity::Error => "ERROR  ",
            Severity::Warning => "warning",
            Severity::Info => "info   ",
        };
        outln!(out, "  {tag} {}", f.message);
        outln!(out, "          → {}", f.suggestion);
        if !f.rows.is_empty() {
            let rows: Vec<String> = f.rows.iter().map(ToString::to_string).collect();
            outln!(out, "          rows {}", rows.join(", "));
        }
    }
}

/// `hearth inspect`.
pub fn run(args: &InspectArgs) -> Result<()> {
    if let Some(format) = chat_format(args)? {
        return run_chat(args, format);
    }
    let started = std::time::Instant::now();
    check_outputs(args)?;
    let (format, text_column, label_column) = plan(args)?;
    let counter = match &args.model {
        Some(dir) => {
            let path = Path::new(dir).join("tokenizer.json");
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            Some(TokenCounter::from_bytes(&bytes)?)
        }
        None => None,
    };
    let options = InspectOptions {
        near: hearth_data::neardup::NearDupSettings {
            threshold: args.similarity,
            ..Default::default()
        },
        max_length: args.max_length,
        ..InspectOptions::default()
    };
    // The report streams: the file is read twice in chunks and never held whole.
    let tokens = counter
        .as_ref()
        .map(|c| Box::new(move |t: &str| c.count(t)) as quality::BoxedTokenCounter<'_>);
    let mut builder = quality::ReportBuilder::new(options.clone(), tokens);
    let error = std::rc::Rc::new(std::cell::RefCell::new(None));
    let chunks = || -> Chunks {
        // An unreadable file yields no chunks; the error is reported below.
        let file = std::fs::File::open(&args.file)
            .map_err(|e| *error.borrow_mut() = Some(e))
            .ok();
        Chunks {
            file: file.map(std::io::BufReader::new),
            error: error.clone(),
        }
    };
    let load = hearth_data::stream::stream_rows(
        chunks,
        format,
        &text_column,
        label_column.as_deref(),
        &mut |t, l| builder.push(t, l),
    );
    if let Some(e) = error.borrow_mut().take() {
        return Err(e).with_context(|| format!("cannot read {}", args.file));
    }
    let load = load.with_context(|| format!("loading {}", args.file))?;
    let n = builder.rows();
    let holdout = quality::planned_holdout(n, args.eval_rows, args.eval_fraction, args.seed);
    let report = builder.finish(
        &load,
        holdout
            .as_ref()
            .map(|s| (s.train.as_slice(), s.eval.as_slice())),
    );
    let needs_rows = args.out.is_some()
        || args.split.is_some()
        || !args.clean.is_empty()
        || args.dedupe.is_some()
        || args.conflicts.is_some();
    let rows = if needs_rows {
        Some(load_all(
            args,
            format,
            &text_column,
            label_column.as_deref(),
        )?)
    } else {
        None
    };
    let seconds = started.elapsed().as_secs_f64();

    let clean_options = clean_options(args);
    let cleaned = match &rows {
        Some(rows) if clean_options != CleanOptions::default() || args.out.is_some() => {
            Some(clean::clean(
                rows.texts.clone(),
                rows.labels.clone(),
                &clean_options,
                &options.near,
            ))
        }
        _ => None,
    };
    let split = match (&args.split, &rows) {
        (Some(shares), Some(rows)) => {
            let (texts, labels) = match &cleaned {
                Some(c) => (&c.texts, c.labels.as_ref()),
                None => (&rows.texts, rows.labels.as_ref()),
            };
            let Some(labels) = labels else {
                bail!("a stratified split needs labels; this file has none")
            };
            let names: std::collections::BTreeSet<&String> = labels.iter().collect();
            let names: Vec<&String> = names.into_iter().collect();
            let index: Vec<usize> = labels
                .iter()
                .map(|l| names.binary_search(&l).unwrap_or(0))
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let groups = hearth_data::duplicate_groups(&refs, Some(&options.near));
            Some(hearth_data::stratified_split(
                &index, &groups, shares[0], shares[1], args.seed,
            )?)
        }
        _ => None,
    };

    let mut out = String::new();
    if args.json {
        let json = serde_json::json!({
            "file": args.file,
            "text_column": text_column,
            "label_column": label_column,
            "report": report,
            "cleaning": cleaned.as_ref().map(|c| &c.steps),
            "rows_after_cleaning": cleaned.as_ref().map(|c| c.texts.len()),
            "split": split.as_ref().map(|s| serde_json::json!({
                "train": s.train.len(), "validation": s.validation.len(), "test": s.test.len()
            })),
            "seconds": seconds,
        });
        outln!(out, "{}", serde_json::to_string_pretty(&json)?);
    } else {
        print_report(
            &mut out,
            &report,
            &text_column,
            label_column.as_deref(),
            seconds,
        );
        if let Some(c) = &cleaned {
            outln!(out, "\ncleaning ({} rows → {}):", n, c.texts.len());
            for s in &c.steps {
                outln!(
                    out,
                    "  {:<16} changed {:>6}  dropped {:>6}",
                    s.step,
                    s.changed,
                    s.dropped
                );
            }
        }
        if let Some(s) = &split {
            outln!(
                out,
                "\nsplit (seed {}): train {}, validation {}, test {}; duplicates never straddle parts",
                s.seed,
                s.train.len(),
                s.validation.len(),
                s.test.len()
            );
        }
    }
    crate::files::print_stdout(&out);
    if let (Some(out), Some(c)) = (&args.out, &cleaned) {
        let bytes =
            std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file))?;
        let bytes = clean::rewrite(
            &bytes,
            format,
            &text_column,
            label_column.as_deref(),
            c,
            output_format(out, format),
        )
        .with_context(|| format!("writing the cleaned rows to {}", out.display()))?;
        files::write_atomic(out, &bytes)?;
        eprintln!("cleaned rows written to {}", out.display());
    }
    if let (Some(path), Some(s)) = (&args.split_out, &split) {
        files::write_atomic(path, serde_json::to_string_pretty(s)?.as_bytes())?;
        eprintln!("split written to {}", path.display());
    }
    Ok(())
}

/// The format the cleaned rows are written in: `out`'s extension, else the input's.
fn output_format(out: &Path, input: DataFormat) -> DataFormat {
    match DataFormat::from_extension(out) {
        Some(format) => format,
        None => input,
    }
}

/// Refuses outputs that would replace the input file, or each other.
fn check_outputs(args: &InspectArgs) -> Result<()> {
    let input = [std::path::PathBuf::from(&args.file)];
    for (flag, path) in [("--out", &args.out), ("--split-out", &args.split_out)] {
        if let Some(path) = path {
            files::refuse_overwriting(flag, std::slice::from_ref(path), &input, &[])?;
        }
    }
    if let (Some(out), Some(split)) = (&args.out, &args.split_out) {
        let same = match (std::fs::canonicalize(out), std::fs::canonicalize(split)) {
            (Ok(a), Ok(b)) => a == b,
            _ => out == split,
        };
        if same {
            bail!(
                "--out and --split-out both name {}: give each its own file",
                out.display()
            );
        }
    }
    Ok(())
}

fn clean_options(args: &InspectArgs) -> CleanOptions {
    let has = |s: CleanStep| args.clean.contains(&s);
    CleanOptions {
        repair_mojibake: has(CleanStep::RepairMojibake),
        nfkc: has(CleanStep::Nfkc),
        whitespace: has(CleanStep::Whitespace),
        redact_pii: has(CleanStep::RedactPii),
        drop_empty: has(CleanStep::DropEmpty),
        conflicts: args.conflicts.map_or(ConflictPolicy::Keep, Into::into),
        dedupe: args.dedupe.map_or(Dedupe::None, Into::into),
    }
}

/// The most labels the report's table lists.
const LABEL_ROWS: usize = 20;

fn print_report(
    out: &mut String,
    r: &QualityReport,
    text: &str,
    label: Option<&str>,
    seconds: f64,
) {
    outln!(
        out,
        "{} rows, text column `{}`{}, encoding {:?}{}  ({seconds:.2} s)",
        r.rows,
        hearth_data::shown(text, hearth_data::NAME_CHARS),
        label.map_or(String::new(), |l| format!(
            ", label column `{}`",
            hearth_data::shown(l, hearth_data::NAME_CHARS)
        )),
        r.encoding,
        if r.fallback_rows > 0 {
            format!(
                " ({} rows hold non-UTF-8 bytes read as latin-1)",
                r.fallback_rows
            )
        } else {
            String::new()
        }
    );
    if let Some(l) = &r.labels {
        outln!(
            out,
            "\nlabels (imbalance {:.2}×, majority {:.1}%):",
            l.imbalance_ratio,
            100.0 * l.majority_share
        );
        for (name, count) in l.names.iter().zip(&l.counts).take(LABEL_ROWS) {
            outln!(
                out,
                "  {:<20} {count:>8}  {:>5.1}%",
                hearth_data::shown(name, 40),
                100.0 * *count as f64 / r.rows.max(1) as f64
            );
        }
        if l.names.len() > LABEL_ROWS {
            outln!(
                out,
                "  … {} more labels (all of them in --json)",
                l.names.len() - LABEL_ROWS
            );
        }
    }
    let c = &r.chars;
    outln!(
        out,
        "\nlength in characters: min {}  median {}  p90 {}  p99 {}  max {}  mean {:.1}",
        c.min,
        c.p50,
        c.p90,
        c.p99,
        c.max,
        c.mean
    );
    if let Some(t) = &r.tokens {
        let l = &t.lengths;
        outln!(
            out,
            "length in tokens:     min {}  median {}  p90 {}  p99 {}  max {}  mean {:.1}; {} ({:.2}%) over {}; unknown tokens {:.3}%",
            l.min,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            l.mean,
            t.truncated.count,
            100.0 * t.truncated_share,
            t.max_length,
            100.0 * t.unknown_rate
        );
    }
    outln!(out, "\nchecks:");
    let mut line = |name: &str, value: String| outln!(out, "  {name:<28} {value}");
    line("empty texts", r.empty_texts.count.to_string());
    line(
        "exact duplicates",
        format!(
            "{} groups, {} rows, {} repeats",
            r.exact_duplicates.groups, r.exact_duplicates.rows, r.exact_duplicates.redundant
        ),
    );
    line(
        "folded duplicates",
        format!(
            "{} groups, {} rows",
            r.folded_duplicates.groups, r.folded_duplicates.rows
        ),
    );
    line(
        &format!("near-duplicates (≥ {})", r.near_settings.threshold),
        format!(
            "{} clusters, {} rows",
            r.near_duplicates.groups, r.near_duplicates.rows
        ),
    );
    if let Some(cf) = &r.conflicting_labels {
        line(
            "conflicting labels",
            format!("{} texts, {} rows", cf.texts, cf.rows),
        );
    }
    line("encoding damage", r.mojibake.count.to_string());
    let kinds: Vec<String> = r
        .pii
        .by_kind
        .iter()
        .map(|(k, n)| format!("{} {n}", k.describe()))
        .collect();
    line(
        "personal data",
        format!(
            "{} rows{}",
            r.pii.rows.count,
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            }
        ),
    );
    if let Some(l) = &r.leakage {
        line(
            "held-out rows also in train",
            format!(
                "{} exact, {} folded, {} near",
                l.exact.count, l.folded.count, l.near.count
            ),
        );
    }
    print_findings(out, &r.findings);
}
