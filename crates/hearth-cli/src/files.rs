//! Reading models, adapters and datasets into bytes, and writing adapter directories and
//! checkpoints atomically: the CLI's side of the files a run uses.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use hearth_train::base::MODEL_DIR_FILES;
use hearth_train::{AdapterFiles, Checkpoint, JobSpec, NamedFiles};

/// A model's files by name: one file (a `.gguf`), or a model directory's `config.json`,
/// `model.safetensors` and `tokenizer.json` with `tokenizer_config.json` and
/// `chat_template.jinja` when present.
pub fn read_model(path: &str) -> Result<NamedFiles> {
    let p = Path::new(path);
    if p.is_file() {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        return Ok(vec![(name, bytes)]);
    }
    let (required, optional) = MODEL_DIR_FILES.split_at(3);
    let mut files = read_dir_files(p, optional)?;
    for name in required {
        let path = p.join(name);
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        files.push((name.to_string(), bytes));
    }
    Ok(files)
}

/// The files among `names` that exist in `dir`, by name.
pub fn read_dir_files(dir: &Path, names: &[&str]) -> Result<NamedFiles> {
    let mut files = Vec::new();
    for name in names {
        let path = dir.join(name);
        if path.exists() {
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            files.push((name.to_string(), bytes));
        }
    }
    Ok(files)
}

/// The files of an adapter directory: PEFT's adapter, a head or a full model's weights, and
/// Hearth's run record, those that exist.
pub fn read_adapter(dir: &Path) -> Result<NamedFiles> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not an adapter directory", dir.display());
    }
    read_dir_files(
        dir,
        &[
            AdapterFiles::CONFIG,
            AdapterFiles::WEIGHTS,
            AdapterFiles::RECORD,
            "head.safetensors",
            "model.safetensors",
        ],
    )
}

/// The files a model path stands for: the file itself, or a model directory's files.
pub fn model_inputs(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        MODEL_DIR_FILES.iter().map(|name| path.join(name)).collect()
    } else {
        vec![path.to_path_buf()]
    }
}

/// The files of an adapter directory a command reads.
pub fn adapter_inputs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Loads the dataset at `path` with the job's columns and format (the format from `path`'s
/// extension unless the job names one).
pub fn read_dataset(job: &JobSpec, path: &str) -> Result<hearth_train::TaskData> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {path}"))?;
    let mut job = job.clone();
    job.data.path = path.to_string();
    hearth_train::classify::load_dataset(&job, &bytes).with_context(|| format!("loading {path}"))
}

/// The directory holding a run's checkpoints.
pub fn checkpoints_dir(run_dir: &Path) -> std::path::PathBuf {
    run_dir.join("checkpoints")
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        // Persist renames and new entries; not every platform can fsync a directory.
        let _ = d.sync_all();
    }
}

/// The PID in the name of a temporary checkpoint directory, `.step-NNNNNN.tmp-PID`.
pub fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(".step-")?;
    let (step, pid) = rest.split_once(".tmp-")?;
    step.parse::<usize>().ok()?;
    pid.parse().ok()
}

/// Writes a checkpoint as `RUN/checkpoints/step-NNNNNN/` so that a crash at any moment leaves
/// only complete checkpoints under that name: every file is written and fsynced in a temporary
/// directory, which is then renamed. Afterwards only the newest `keep` checkpoints of this run
/// (the same job on the same data) remain; another run's checkpoints are never touched, nor
/// the temporary directory of a process that is still running. The caller holds the run
/// directory ([`crate::run_dir::RunDir`]).
pub fn write_checkpoint(run_dir: &Path, checkpoint: &Checkpoint, keep: usize) -> Result<()> {
    let dir = checkpoints_dir(run_dir);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = Checkpoint::dir_name(checkpoint.step());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let written = write_checkpoint_files(&dir, &tmp, &name, checkpoint);
    if written.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    written?;

    // Prune: the newest `keep` checkpoints of this run stay, and temporary directories of
    // processes that are gone go.
    let mut steps = Vec::new();
    for entry in fs::read_dir(&dir)?.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if let Some(step) = Checkpoint::step_of_dir(&file_name) {
            let path = entry.path();
            if checkpoint.same_run_as(|f| fs::read(path.join(f)).ok()) {
                steps.push((step, path));
            }
        } else if let Some(pid) = temp_owner(&file_name)
            && (pid == std::process::id() || crate::run_dir::process_alive(pid) == Some(false))
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    steps.sort();
    let excess = steps.len().saturating_sub(keep.max(1));
    for (_, path) in &steps[..excess] {
        let _ = fs::remove_dir_all(path);
    }
    Ok(())
}

/// Writes `checkpoint`'s files into `tmp` and renames it to `dir/name`.
fn write_checkpoint_files(
    dir: &Path,
    tmp: &Path,
    name: &str,
    checkpoint: &Checkpoint,
) -> Result<()> {
    fs::create_dir(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    for (file, bytes) in checkpoint.to_files()? {
        let path = tmp.join(file);
        let mut f =
            fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    sync_dir(tmp);
    let target = dir.join(name);
    if target.exists() {
        // The same step again (a run resumed at its last step): replace it, if it is this run's.
        if !checkpoint.same_run_as(|f| fs::read(target.join(f)).ok()) {
            anyhow::bail!(
                "{} holds a checkpoint of another run; it is left as it is",
                target.display()
            );
        }
        fs::remove_dir_all(&target).with_context(|| format!("replacing {}", target.display()))?;
    }
    fs::rename(tmp, &target).with_context(|| format!("renaming into {}", target.display()))?;
    sync_dir(dir);
    Ok(())
}

/// Reads one checkpoint directory, verifying every file.
pub fn read_checkpoint(dir: &Path) -> Result<Checkpoint, hearth_train::TrainError> {
    Checkpoint::from_files(|name| fs::read(dir.join(name)).ok())
}

/// The newest intact checkpoint under `path`: a run directory, its `checkpoints` directory, or
/// one checkpoint directory. Damaged checkpoints are reported on stderr and skipped.
pub fn latest_checkpoint(path: &Path) -> Result<(std::path::PathBuf, Checkpoint)> {
    if path.join(Checkpoint::STATE).exists() {
        let checkpoint = read_checkpoint(path)
            .with_context(|| format!("checkpoint {} cannot be used", path.display()))?;
        return Ok((path.to_path_buf(), checkpoint));
    }
    let dir = if checkpoints_dir(path).is_dir() {
        checkpoints_dir(path)
    } else {
        path.to_path_buf()
    };
    let entries = fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut steps: Vec<(usize, std::path::PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            Some((
                Checkpoint::step_of_dir(&e.file_name().to_string_lossy())?,
                e.path(),
            ))
        })
        .collect();
    if steps.is_empty() {
        anyhow::bail!(
            "{} holds no checkpoints (step-NNNNNN directories written by `hearth train --out`)",
            dir.display()
        );
    }
    steps.sort();
    let mut problems = Vec::new();
    for (_, path) in steps.iter().rev() {
        match read_checkpoint(path) {
            Ok(checkpoint) => return Ok((path.clone(), checkpoint)),
            Err(err) => {
                crate::ranks::warn(format!(
                    "checkpoint {} is unusable ({err}); trying an older one",
                    path.display()
                ));
                problems.push(format!("{}: {err}", path.display()));
            }
        }
    }
    anyhow::bail!(
        "no intact checkpoint in {}: {}",
        dir.display(),
        problems.join("; ")
    )
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one:
/// a temporary file in the same directory, fsynced, then renamed over the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut file =
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))
    })();
    if written.is_err() {
        // A failed write or rename leaves no temporary file behind.
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir);
    Ok(())
}

/// `path` made absolute with every link and `..` resolved, also where its last components do
/// not exist yet (those are taken as written).
fn resolved(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in std::path::absolute(path).ok()?.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => {
                out.push(other);
                if let Ok(real) = fs::canonicalize(&out) {
                    out = real;
                }
            }
        }
    }
    Some(out)
}

/// Whether `a` and `b` are one file: the same path once resolved, or (on Unix) the same inode
/// under two names.
fn same_file(a: &Path, b: &Path) -> bool {
    if resolved(a).is_some_and(|a| resolved(b) == Some(a)) {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (fs::metadata(a), fs::metadata(b)) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    false
}

/// Refuses to write any of `outputs` where it would replace one of `inputs` (compared after
/// resolving links and `..`, and by inode, so no other name hides it), or into one of
/// `input_dirs` or a folder inside one: `what` names the flag that chose the output.
pub fn refuse_overwriting(
    what: &str,
    outputs: &[PathBuf],
    inputs: &[PathBuf],
    input_dirs: &[PathBuf],
) -> Result<()> {
    let dirs: Vec<(PathBuf, &PathBuf)> = input_dirs
        .iter()
        .filter_map(|p| Some((resolved(p)?, p)))
        .collect();
    for out in outputs {
        if let Some(input) = inputs.iter().find(|input| same_file(out, input)) {
            anyhow::bail!(
                "{what} would write {} over {}, an input of this command: choose another {what}",
                out.display(),
                input.display()
            );
        }
        if let Some(real) = resolved(out)
            && let Some((_, input)) = dirs.iter().find(|(dir, _)| real.starts_with(dir))
        {
            anyhow::bail!(
                "{what} would write into {}, which holds an input of this command: choose another \
                 {what}",
                input.display()
            );
        }
    }
    Ok(())
}

/// Writes `text` to stdout; a reader that went away (`hearth inspect … | head`) ends the
/// output quietly instead of with a panic.
pub fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}
