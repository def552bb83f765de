//! `hearth inspect`: the data-quality report, optional cleaning and a stratified split.

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
            "give --text-column; the file has columns {:?}",
            detected.names
        ),
    };
    let label = if args.no_labels {
        None
    } else {
        args.label_column.clone().or(detected.label)
    };
    Ok((text, label))
}

/// Loads the file's rows as the flags say.
pub fn load(args: &InspectArgs) -> Result<(RawRows, String, Option<String>)> {
    let bytes = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file))?;
    let explicit = args.format.as_deref().map(str::parse).transpose()?;
    let format = DataFormat::resolve(explicit, Path::new(&args.file))?;
    let (text, label) = columns(args, &bytes, format)?;
    let rows = hearth_data::load_rows(&bytes, format, &text, label.as_deref())
        .with_context(|| format!("loading {}", args.file))?;
    Ok((rows, text, label))
}

/// `hearth inspect`.
pub fn run(args: &InspectArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let (rows, text_column, label_column) = load(args)?;
    let counter = match &args.model {
        Some(dir) => {
            let path = Path::new(dir).join("tokenizer.json");
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            Some(TokenCounter::from_bytes(&bytes)?)
        }
        None => None,
    };
    let count = |t: &str| counter.as_ref().map_or((0, 0), |c| c.count(t));
    let options = InspectOptions {
        near: hearth_data::neardup::NearDupSettings {
            threshold: args.similarity,
            ..Default::default()
        },
        max_length: args.max_length,
        examples: 5,
    };
    let n = rows.texts.len();
    let holdout = quality::planned_holdout(n, args.eval_rows, args.eval_fraction, args.seed);
    let report = quality::inspect(
        &rows.texts,
        rows.labels.as_deref(),
        &rows.report,
        holdout
            .as_ref()
            .map(|s| (s.train.as_slice(), s.eval.as_slice())),
        &options,
        counter
            .as_ref()
            .map(|_| &count as quality::TokenCounter<'_>),
    );
    let seconds = started.elapsed().as_secs_f64();

    let clean_options = clean_options(args);
    let cleaned = (clean_options != CleanOptions::default() || args.out.is_some()).then(|| {
        clean::clean(
            rows.texts.clone(),
            rows.labels.clone(),
            &clean_options,
            &options.near,
        )
    });
    let split = match &args.split {
        None => None,
        Some(shares) => {
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
    };

    if args.json {
        let out = serde_json::json!({
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
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_report(&report, &text_column, label_column.as_deref(), seconds);
        if let Some(c) = &cleaned {
            println!("\ncleaning ({} rows → {}):", n, c.texts.len());
            for s in &c.steps {
                println!(
                    "  {:<16} changed {:>6}  dropped {:>6}",
                    s.step, s.changed, s.dropped
                );
            }
        }
        if let Some(s) = &split {
            println!(
                "\nsplit (seed {}): train {}, validation {}, test {}; duplicates never straddle parts",
                s.seed,
                s.train.len(),
                s.validation.len(),
                s.test.len()
            );
        }
    }
    if let (Some(out), Some(c)) = (&args.out, &cleaned) {
        let label = label_column.as_deref().unwrap_or("label");
        let mut writer = csv::Writer::from_writer(Vec::new());
        match &c.labels {
            Some(labels) => {
                writer.write_record([text_column.as_str(), label])?;
                for (t, l) in c.texts.iter().zip(labels) {
                    writer.write_record([t, l])?;
                }
            }
            None => {
                writer.write_record([text_column.as_str()])?;
                for t in &c.texts {
                    writer.write_record([t])?;
                }
            }
        }
        let bytes = writer.into_inner().context("writing the cleaned CSV")?;
        files::write_atomic(out, &bytes)?;
        eprintln!("cleaned rows written to {}", out.display());
    }
    if let (Some(path), Some(s)) = (&args.split_out, &split) {
        files::write_atomic(path, serde_json::to_string_pretty(s)?.as_bytes())?;
        eprintln!("split written to {}", path.display());
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

fn print_report(r: &QualityReport, text: &str, label: Option<&str>, seconds: f64) {
    println!(
        "{} rows, text column `{text}`{}, encoding {:?}{}  ({seconds:.2} s)",
        r.rows,
        label.map_or(String::new(), |l| format!(", label column `{l}`")),
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
        println!(
            "\nlabels (imbalance {:.2}×, majority {:.1}%):",
            l.imbalance_ratio,
            100.0 * l.majority_share
        );
        for (name, count) in l.names.iter().zip(&l.counts) {
            println!(
                "  {name:<20} {count:>8}  {:>5.1}%",
                100.0 * *count as f64 / r.rows.max(1) as f64
            );
        }
    }
    let c = &r.chars;
    println!(
        "\nlength in characters: min {}  median {}  p90 {}  p99 {}  max {}  mean {:.1}",
        c.min, c.p50, c.p90, c.p99, c.max, c.mean
    );
    if let Some(t) = &r.tokens {
        let l = &t.lengths;
        println!(
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
    println!("\nchecks:");
    let line = |name: &str, value: String| println!("  {name:<28} {value}");
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
    if r.findings.is_empty() {
        println!("\nno findings.");
        return;
    }
    println!("\nfindings:");
    for f in &r.findings {
        let tag = match f.severity {
            Severity::Error => "ERROR  ",
            Severity::Warning => "warning",
            Severity::Info => "info   ",
        };
        println!("  {tag} {}", f.message);
        println!("          → {}", f.suggestion);
        if !f.rows.is_empty() {
            let rows: Vec<String> = f.rows.iter().map(ToString::to_string).collect();
            println!("          rows {}", rows.join(", "));
        }
    }
}
