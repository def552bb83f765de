//! Reading model directories and datasets, and writing adapter directories atomically.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use hearth_data::Dataset;
use hearth_models::ModelFiles;
use hearth_train::JobSpec;

/// Reads `config.json`, `model.safetensors` and `tokenizer.json` from a model directory.
pub fn read_model(dir: &str) -> Result<ModelFiles> {
    let dir = Path::new(dir);
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    Ok(ModelFiles {
        config: read("config.json")?,
        weights: read("model.safetensors")?,
        tokenizer: read("tokenizer.json")?,
    })
}

/// Loads the dataset at `path` with the job's columns and format (the format from `path`'s
/// extension unless the job names one).
pub fn read_dataset(job: &JobSpec, path: &str) -> Result<Dataset> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {path}"))?;
    let mut job = job.clone();
    job.data.path = path.to_string();
    hearth_train::run::load_dataset(&job, &bytes).with_context(|| format!("loading {path}"))
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one:
/// a temporary file in the same directory, fsynced, then renamed over the target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    if let Ok(d) = fs::File::open(dir) {
        // Persist the rename itself; not every platform can fsync a directory.
        let _ = d.sync_all();
    }
    Ok(())
}
