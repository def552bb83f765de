//! Building the page: the wasm module through cargo, the pinned `wasm-bindgen` CLI and (where
//! installed) `wasm-opt`, then `web/` copied beside it into `static/`.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The one place the wasm-bindgen version is read: the lock file, so the CLI always matches
/// the crate the module was compiled against.
fn locked_wasm_bindgen(root: &Path) -> Result<String> {
    let lock = fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = "))
        {
            return Ok(version.trim_matches('"').to_string());
        }
    }
    bail!("Cargo.lock has no wasm-bindgen package")
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Fetches the demo model and data (`scripts/fetch-assets.sh` checks what is already there).
pub fn fetch_assets(root: &Path) -> Result<()> {
    run(Command::new(root.join("scripts/fetch-assets.sh")).current_dir(root))
}

/// Builds `static/` from `web/` and the wasm module.
pub fn build(root: &Path) -> Result<()> {
    let version = locked_wasm_bindgen(root)?;
    // The wasm target and the pinned wasm-bindgen CLI: installed here when missing, so one
    // command works on a fresh machine.
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    let found = || {
        Command::new("wasm-bindgen")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    if found() != format!("wasm-bindgen {version}") {
        eprintln!("installing wasm-bindgen-cli {version} (it must match Cargo.lock)");
        run(Command::new(env!("CARGO")).args([
            "install",
            "wasm-bindgen-cli",
            "--version",
            &version,
        ]))?;
        if found() != format!("wasm-bindgen {version}") {
            bail!(
                "wasm-bindgen {version} is needed but `wasm-bindgen --version` says `{}`; \
                 is ~/.cargo/bin on PATH?",
                found()
            );
        }
    }
    run(Command::new(env!("CARGO")).current_dir(root).args([
        "build",
        "-p",
        "hearth-web",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-size",
        "--locked",
    ]))?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let wasm = target_dir.join("wasm32-unknown-unknown/wasm-size/hearth_web.wasm");
    let out = root.join("static");
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    let pkg = out.join("pkg");
    fs::create_dir_all(&pkg)?;
    // wasm-opt runs on cargo's output, before wasm-bindgen: optimizing the bound module with
    // Debian's binaryen breaks wasm-bindgen's function table in the browser.
    let optimized_dir = target_dir.join("wasm-opt");
    fs::create_dir_all(&optimized_dir)?;
    let optimized = optimized_dir.join("hearth_web.wasm");
    let before = fs::metadata(&wasm)
        .with_context(|| format!("reading {}", wasm.display()))?
        .len();
    let input = match Command::new("wasm-opt")
        .arg("-O2")
        .arg(&wasm)
        .arg("-o")
        .arg(&optimized)
        .status()
    {
        Ok(status) if status.success() => {
            eprintln!(
                "wasm-opt: {before} -> {} bytes",
                fs::metadata(&optimized)?.len()
            );
            optimized
        }
        Ok(status) => {
            eprintln!("wasm-opt failed ({status}); keeping the unoptimized module");
            wasm
        }
        Err(_) => {
            eprintln!("wasm-opt not installed; the module is not shrunk further");
            wasm
        }
    };
    run(Command::new("wasm-bindgen")
        .arg("--target")
        .arg("web")
        .arg("--no-typescript")
        .arg("--remove-name-section")
        .arg("--out-dir")
        .arg(&pkg)
        .arg(&input))?;
    let bound = pkg.join("hearth_web_bg.wasm");
    copy_dir(&root.join("web"), &out)?;
    eprintln!(
        "static/ ready: wasm module {} bytes",
        fs::metadata(&bound)?.len()
    );
    Ok(())
}
