//! An output directory owned by one run. A run holds `hearth.lock` (its PID and host name)
//! while it writes there; a lock left by a process that is gone from this host is taken over
//! with a note, a live one (or one of another host, whose processes cannot be seen) refuses.
//! A new job never starts in a directory that holds another run's files unless the user says
//! `--overwrite` (which removes that run's own files, never anything else) or `--resume`; and
//! no run replaces a file that is not Hearth's.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hearth_models::Strategy;
use hearth_train::{AdapterFiles, Checkpoint, JobSpec, RunRecord};
use serde::{Deserialize, Serialize};

use crate::files;

/// The lock file's name.
pub const LOCK: &str = "hearth.lock";
/// The split a run saves beside its adapter.
pub const SPLIT: &str = "split.json";

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Owner {
    pid: u32,
    host: String,
}

impl Owner {
    fn me() -> Self {
        Self {
            pid: std::process::id(),
            host: host_name(),
        }
    }
}

/// This machine's name, as the lock records it.
pub fn host_name() -> String {
    #[cfg(unix)]
    {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
    #[cfg(not(unix))]
    {
        std::env::var("COMPUTERNAME").unwrap_or_default()
    }
}

/// Whether process `pid` of this host is running; `None` where the platform cannot tell.
pub fn process_alive(pid: u32) -> Option<bool> {
    #[cfg(unix)]
    {
        let Ok(pid) = i32::try_from(pid) else {
            return Some(false);
        };
        // Signal 0 checks existence without signalling; EPERM means it exists as another user.
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Ok(()) | Err(nix::errno::Errno::EPERM) => Some(true),
            Err(_) => Some(false),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        None
    }
}

/// Whether a lock's owner is gone: a process of this host that is no longer running (or this
/// very process's PID, reused after a crash: this process holds no lock yet).
fn is_stale(owner: &Owner) -> bool {
    let me = Owner::me();
    owner.host == me.host && (owner.pid == me.pid || process_alive(owner.pid) == Some(false))
}

fn read_owner(lock: &Path) -> std::io::Result<Option<Owner>> {
    let bytes = fs::read(lock)?;
    Ok(serde_json::from_slice(&bytes).ok())
}

fn in_use(dir: &Path, owner: &Owner) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is in use by another hearth run (PID {} on host {}): wait for it to end or choose \
         another --out (if no such run is going, delete {})",
        dir.display(),
        owner.pid,
        if owner.host.is_empty() {
            "?"
        } else {
            &owner.host
        },
        dir.join(LOCK).display()
    )
}

/// The files a run of `strategy` writes into its directory (besides `checkpoints/`).
pub fn run_files(strategy: Strategy) -> Vec<&'static str> {
    let mut names = match strategy {
        Strategy::Lora => vec![AdapterFiles::CONFIG, AdapterFiles::WEIGHTS],
        Strategy::Head => vec![Strategy::Head.weights_file()],
        Strategy::Full => vec!["config.json", "model.safetensors", "tokenizer.json"],
    };
    names.extend([AdapterFiles::RECORD, SPLIT]);
    names
}

/// What of a run a directory holds: its record's strategy (or the newest readable
/// checkpoint's), and whether it holds a run at all.
struct Found {
    run: bool,
    strategy: Option<Strategy>,
}

fn find_run(dir: &Path) -> Found {
    let record = fs::read(dir.join(AdapterFiles::RECORD))
        .ok()
        .and_then(|b| serde_json::from_slice::<RunRecord>(&b).ok());
    let checkpoints = checkpoint_entries(dir);
    let run = dir.join(AdapterFiles::RECORD).exists()
        || dir.join(SPLIT).exists()
        || !checkpoints.is_empty();
    let strategy = record.map(|r| r.job.train.strategy).or_else(|| {
        let mut steps: Vec<_> = checkpoints.iter().filter(|(s, _)| s.is_some()).collect();
        steps.sort();
        steps
            .iter()
            .rev()
            .find_map(|(_, path)| files::read_checkpoint(path).ok())
            .and_then(|c| c.record().ok())
            .map(|r| r.job.train.strategy)
    });
    Found { run, strategy }
}

/// The entries of `dir/checkpoints` that Hearth writes: `step-N` directories (with their
/// step) and the temporary `.step-N.tmp-PID` ones (without).
fn checkpoint_entries(dir: &Path) -> Vec<(Option<usize>, PathBuf)> {
    let Ok(entries) = fs::read_dir(files::checkpoints_dir(dir)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(step) = Checkpoint::step_of_dir(&name) {
                Some((Some(step), e.path()))
            } else {
                files::temp_owner(&name).map(|_| (None, e.path()))
            }
        })
        .collect()
}

/// How a run means to use its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A new run: refused where another run's files are, unless `overwrite`.
    New { overwrite: bool },
    /// The run continued by `--resume`, in its own directory.
    Resume,
}

/// Checks, without writing anything, that a run of `strategy` may use `dir`: no live run holds
/// it, it holds no other run (unless `Claim::New { overwrite: true }` or `Claim::Resume`), and
/// no file the run writes is there without being Hearth's.
pub fn check(dir: &Path, claim: Claim, strategy: Strategy) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!(
            "--out {} is a file, not a directory: a run writes an adapter directory",
            dir.display()
        );
    }
    if let Ok(Some(owner)) = read_owner(&dir.join(LOCK))
        && !is_stale(&owner)
    {
        return Err(in_use(dir, &owner));
    }
    let found = find_run(dir);
    let overwrite = match claim {
        Claim::Resume => return Ok(()),
        Claim::New { overwrite } => overwrite,
    };
    if found.run && !overwrite {
        bail!(
            "{} holds another run's files: `hearth train --resume {}` continues that run, \
             --overwrite replaces its files, or choose another --out",
            dir.display(),
            dir.display()
        );
    }
    // What --overwrite would remove is Hearth's; anything else the run would replace is not.
    let removable = if found.run {
        run_files(found.strategy.unwrap_or(Strategy::Lora))
    } else {
        Vec::new()
    };
    for name in run_files(strategy) {
        if !removable.contains(&name) && dir.join(name).exists() {
            bail!(
                "{} holds {name}, which is not from a Hearth run and which this run would \
                 replace: choose another --out",
                dir.display()
            );
        }
    }
    Ok(())
}

/// A run's hold on its directory: the lock, released (with the directory, when the run made
/// it and left it empty) when dropped.
#[derive(Debug)]
pub struct RunDir {
    dir: PathBuf,
    created: bool,
}

impl RunDir {
    /// Takes `dir` for this run: makes it, takes the lock (over a stale one, with a note), and
    /// checks again that the run may use it ([`check`]), this time under the lock. With
    /// `Claim::New { overwrite: true }`, the other run's files go.
    pub fn claim(dir: &Path, claim: Claim, strategy: Strategy) -> Result<Self> {
        let created = !dir.exists();
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // Dropped on an error below: it releases the lock only if it is ours, and removes the
        // directory only if this run made it and it is empty.
        let owned = Self {
            dir: dir.to_path_buf(),
            created,
        };
        owned.lock()?;
        check(dir, claim, strategy)?;
        if claim == (Claim::New { overwrite: true }) {
            owned.remove_previous_run()?;
        }
        Ok(owned)
    }

    fn lock(&self) -> Result<()> {
        let path = self.dir.join(LOCK);
        let me = Owner::me();
        for _ in 0..4 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let bytes = serde_json::to_vec(&me)?;
                    file.write_all(&bytes)
                        .and_then(|()| file.sync_all())
                        .with_context(|| format!("writing {}", path.display()))?;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    match read_owner(&path) {
                        // Gone between the two calls: try again.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => {
                            return Err(e).with_context(|| format!("reading {}", path.display()));
                        }
                        Ok(Some(owner)) if is_stale(&owner) => {
                            eprintln!(
                                "note: {} was left by hearth run PID {} on {}, which is no longer \
                                 running: taking it over",
                                path.display(),
                                owner.pid,
                                owner.host
                            );
                            match fs::remove_file(&path) {
                                Ok(()) => continue,
                                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                                Err(e) => {
                                    return Err(e)
                                        .with_context(|| format!("removing {}", path.display()));
                                }
                            }
                        }
                        Ok(Some(owner)) => return Err(in_use(&self.dir, &owner)),
                        Ok(None) => bail!(
                            "{} exists but is not a lock Hearth can read: if no run is using {}, \
                             delete it",
                            path.display(),
                            self.dir.display()
                        ),
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        bail!(
            "could not take {}: other runs keep taking it",
            path.display()
        )
    }

    /// Removes the previous run's own files: its adapter (by its record's strategy), record,
    /// split and checkpoints. Nothing else in the directory is touched.
    fn remove_previous_run(&self) -> Result<()> {
        let found = find_run(&self.dir);
        if !found.run {
            return Ok(());
        }
        let mut removed = Vec::new();
        for name in run_files(found.strategy.unwrap_or(Strategy::Lora)) {
            let path = self.dir.join(name);
            if path.is_file() {
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
                removed.push(name.to_string());
            }
        }
        let mut checkpoints = 0;
        for (_, path) in checkpoint_entries(&self.dir) {
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
            checkpoints += 1;
        }
        // Only when nothing else is in it.
        let _ = fs::remove_dir(files::checkpoints_dir(&self.dir));
        if checkpoints > 0 {
            removed.push(format!("{checkpoints} checkpoints"));
        }
        eprintln!(
            "--overwrite: removed the previous run's files from {} ({})",
            self.dir.display(),
            removed.join(", ")
        );
        Ok(())
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let lock = self.dir.join(LOCK);
        if let Ok(Some(owner)) = read_owner(&lock)
            && owner == Owner::me()
        {
            let _ = fs::remove_file(&lock);
        }
        if self.created {
            // Only an empty directory goes: a refused run leaves nothing behind.
            let _ = fs::remove_dir(&self.dir);
        }
    }
}

/// The job's files as absolute, canonical paths, so that its run record (and `--resume` from
/// any directory) finds them.
pub fn absolute_paths(job: &mut JobSpec) -> Result<()> {
    let canonical = |path: &str, what: &str| -> Result<String> {
        let real =
            std::fs::canonicalize(path).with_context(|| format!("cannot read {path} ({what})"))?;
        Ok(real.to_string_lossy().into_owned())
    };
    job.model.path = canonical(&job.model.path, "the model")?;
    job.data.path = canonical(&job.data.path, "the data")?;
    if let Some(dir) = &job.model.init_adapter {
        job.model.init_adapter = Some(canonical(dir, "the initial adapter")?);
    }
    Ok(())
}

/// Refuses a run directory that would write over the job's own inputs: the data file, the
/// model's files or folder, or the initial adapter's.
pub fn check_not_an_input(job: &JobSpec, out: &Path) -> Result<()> {
    let model = Path::new(&job.model.path);
    let mut inputs = files::model_inputs(model);
    inputs.push(PathBuf::from(&job.data.path));
    let mut dirs = Vec::new();
    if model.is_dir() {
        dirs.push(model.to_path_buf());
    }
    if let Some(dir) = &job.model.init_adapter {
        inputs.extend(files::adapter_inputs(Path::new(dir)));
        dirs.push(PathBuf::from(dir));
    }
    let mut outputs = vec![out.to_path_buf()];
    outputs.extend(
        run_files(job.train.strategy)
            .iter()
            .map(|name| out.join(name)),
    );
    outputs.push(files::checkpoints_dir(out));
    files::refuse_overwriting("--out", &outputs, &inputs, &dirs)
}
