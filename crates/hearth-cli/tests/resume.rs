//! `hearth train --resume`: a killed run continues to the adapter of the uninterrupted run.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{
    assert_user_error, crash_job, hearth, max_adapter_difference, root, stderr, temp_dir, write,
};

#[test]
fn a_run_killed_mid_training_resumes_to_the_same_adapter() {
    let dir = temp_dir("crash");
    let job = crash_job(&dir);
    let args = |out: &Path| {
        let mut a = job.clone();
        a.extend(["--out".to_string(), out.to_string_lossy().into_owned()]);
        a
    };

    // The uninterrupted run.
    let whole = dir.join("whole");
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args(&whole))
        .current_dir(root())
        .output()
        .expect("hearth runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let kept: Vec<String> = std::fs::read_dir(whole.join("checkpoints"))
        .expect("checkpoints written")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut kept_sorted = kept.clone();
    kept_sorted.sort();
    assert_eq!(
        kept_sorted,
        ["step-000036", "step-000040"],
        "the last two kept"
    );

    // The same run, killed with SIGKILL once its third checkpoint is on disk.
    let crashed = dir.join("crashed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args(&crashed))
        .current_dir(root())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("hearth starts");
    let third = crashed.join("checkpoints/step-000012");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !third.exists() {
        assert!(
            child.try_wait().expect("poll").is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert!(
        !crashed.join("adapter_model.safetensors").exists(),
        "killed before the end"
    );

    // Damage the newest checkpoint as a crash during a copy would: the run must fall back.
    let mut steps: Vec<PathBuf> = std::fs::read_dir(crashed.join("checkpoints"))
        .expect("checkpoints")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("step-"))
        })
        .collect();
    steps.sort();
    let newest = steps.last().expect("a checkpoint").clone();
    let weights = newest.join("adapter_model.safetensors");
    let bytes = std::fs::read(&weights).expect("weights");
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("truncate");

    let out = hearth(&["train", "--resume", &crashed.to_string_lossy()]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("adapter_model.safetensors does not match its checksum"),
        "{err}"
    );
    assert!(err.contains("trying an older one"), "{err}");
    assert!(err.contains("resuming from"), "{err}");

    let diff = max_adapter_difference(
        &whole.join("adapter_model.safetensors"),
        &crashed.join("adapter_model.safetensors"),
    );
    assert!(diff <= 1e-6, "resumed adapter differs by {diff}");
    let record = |d: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("hearth_run.json")).expect("record"))
            .expect("json")
    };
    assert_eq!(record(&whole)["labels"], record(&crashed)["labels"]);
}

#[test]
fn resume_refuses_job_flags_and_runs_without_intact_checkpoints() {
    let dir = temp_dir("resume-errors");
    let out = hearth(&["train", "--resume", &dir.to_string_lossy(), "--steps", "5"]);
    assert_user_error(&out, "drop --steps");
    let out = hearth(&["train", "--resume", &dir.to_string_lossy()]);
    assert_user_error(&out, "holds no checkpoints");
    let broken = dir.join("checkpoints/step-000004");
    std::fs::create_dir_all(&broken).expect("dir");
    write(&broken, "adapter_model.safetensors", b"not a checkpoint");
    let out = hearth(&["train", "--resume", &dir.to_string_lossy()]);
    assert_user_error(&out, "no intact checkpoint");
    assert!(
        stderr(&out).contains("was not finished"),
        "{}",
        stderr(&out)
    );
}
