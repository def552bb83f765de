//! Supervised fine-tuning against transformers on the tiny chat model
//! (`scripts/fixtures/tiny_chat.py`: a random 2-layer Llama with a byte-level BPE tokenizer
//! and a ChatML template): the rendered conversations' ids and assistant masks, the masked loss
//! of a padded batch, the logits, greedy generation; then a short run of the SFT loop.

mod common;

use std::ops::ControlFlow;
use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};
use hearth_data::chat::{Truncation, Turn};
use hearth_models::chat_model::{ChatModel, LmFiles};
use hearth_models::generate::{GenerationSettings, generate};
use hearth_train::batching::Padding;
use hearth_train::sft::{Batch, Sft, Tokenized, tokenize};
use hearth_train::{Event, JobSpec, Metrics, Objective};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny-chat")
}

fn files() -> LmFiles {
    let read = |n: &str| std::fs::read(dir().join(n)).expect("fixture file");
    LmFiles::Hf {
        config: read("config.json"),
        weights: read("model.safetensors"),
        tokenizer: read("tokenizer.json"),
        tokenizer_config: Some(read("tokenizer_config.json")),
        chat_template: Some(read("chat_template.jinja")),
    }
}

/// The tiny chat model's files by name, as a run takes them.
fn named_files() -> Vec<(String, Vec<u8>)> {
    [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
    ]
    .iter()
    .map(|n| {
        (
            n.to_string(),
            std::fs::read(dir().join(n)).expect("fixture file"),
        )
    })
    .collect()
}

fn turns(v: &serde_json::Value) -> Vec<Turn> {
    serde_json::from_value(v.clone()).expect("turns")
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("ids")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

#[test]
fn tokens_masks_loss_logits_and_generation_match_transformers() {
    let fx = common::fixture("tiny_chat.json");
    let device = Device::flex();
    let chat = ChatModel::load(&files(), 0.0, &device).expect("loads");
    let convs: Vec<Vec<Turn>> = fx["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|c| turns(&c["messages"]))
        .collect();
    let (examples, report) =
        tokenize(&chat.tokenizer, &convs, 512, Truncation::default()).expect("tokenizes");
    assert_eq!((report.truncated, report.dropped), (0, 0));
    for (e, c) in examples
        .iter()
        .zip(fx["conversations"].as_array().expect("rows"))
    {
        assert_eq!(e.ids, ids(&c["ids"]));
        let mask: Vec<bool> = c["mask"]
            .as_array()
            .expect("mask")
            .iter()
            .map(|m| m.as_u64() == Some(1))
            .collect();
        assert_eq!(e.scored, mask);
    }

    // The three as one right-padded batch: transformers' loss.
    let members: Vec<Vec<usize>> = (0..3).map(|i| vec![i]).collect();
    let rows: Vec<&[usize]> = members.iter().map(Vec::as_slice).collect();
    let batch = Batch::new(&examples, &rows, 2);
    let loss = batch.loss(&chat.model).expect("loss");
    let loss = loss.into_data().try_to_vec::<f32>().expect("f32")[0];
    let want = fx["loss"].as_f64().expect("loss") as f32;
    assert!((loss - want).abs() < 1e-5, "loss {loss} vs {want}");
    // Padded further, to a bucket of 16 (`train.pad_to_multiple_of`), the loss is the same:
    // the padding is neither scored nor seen by the real tokens.
    let bucket = Padding {
        multiple: 16,
        max_length: 512,
    };
    let padded = Batch::padded(&examples, &rows, 2, bucket);
    assert!(padded.seq > batch.seq && padded.seq.is_multiple_of(16));
    assert_eq!(padded.scored_tokens(), batch.scored_tokens());
    let padded_loss = padded.loss(&chat.model).expect("loss");
    let padded_loss = padded_loss.into_data().try_to_vec::<f32>().expect("f32")[0];
    assert!(
        (padded_loss - loss).abs() < 1e-6,
        "loss {padded_loss} padded to {} vs {loss} at {}",
        padded.seq,
        batch.seq
    );

    // The first conversation's logits.
    let first = &examples[0].ids;
    let n = first.len();
    let input = Tensor::<2, Int>::from_data(
        TensorData::new(first.iter().map(|&i| i64::from(i)).collect(), [1, n]),
        &device,
    );
    let logits = chat
        .model
        .forward(input, Tensor::ones([1, n], &device))
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32");
    let want: Vec<f32> = fx["logits_0"]
        .as_array()
        .expect("rows")
        .iter()
        .flat_map(common::floats)
        .collect();
    let worst = logits
        .iter()
        .zip(&want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst < 1e-4, "logits differ by {worst}");

    // Greedy generation from Hearth's own prompt ids (EOS disabled, as in the fixture).
    let prompt = chat
        .tokenizer
        .apply_chat(
            &[hearth_models::chat::Message::new(
                "user",
                "What is the capital of France?",
            )],
            true,
        )
        .expect("prompt");
    assert_eq!(prompt, ids(&fx["prompt_ids"]));
    let (answer, _) = pollster::block_on(generate(
        &chat.model,
        &prompt,
        &[],
        &GenerationSettings {
            max_new_tokens: 12,
            ..GenerationSettings::default()
        },
        |_| true,
    ))
    .expect("generates");
    assert_eq!(answer, ids(&fx["greedy_ids"]));
}

fn job(packing: bool) -> JobSpec {
    let job = serde_json::json!({
        "model": {"path": "tests/fixtures/tiny-chat"},
        "data": {"path": "capitals_sft.jsonl", "eval_rows": 16},
        "task": {"kind": "sft", "packing": packing},
        "lora": {"r": 4, "lora_alpha": 8.0, "lora_dropout": 0.0,
                 "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                    "up_proj", "down_proj"]},
        "train": {"steps": 40, "batch_size": 4, "max_length": 64, "learning_rate": 0.05,
                  "warmup_steps": 0, "eval_every": 20, "checkpoint_every": 0}
    });
    JobSpec::parse(&job.to_string()).expect("job")
}

/// Packing changes how rows are laid out, not the numbers: the held-out loss of packed rows
/// equals the loss of one conversation per row.
#[test]
fn packed_and_unpacked_rows_give_the_same_validation_loss() {
    let device = Device::flex();
    let chat = ChatModel::load(&files(), 0.0, &device).expect("loads");
    let bytes = std::fs::read(dir().join("../capitals_sft.jsonl")).expect("data");
    let data = hearth_train::sft::load_conversations(&job(false), &bytes).expect("data");
    let (eval, _) =
        tokenize(&chat.tokenizer, &data.eval, 64, Truncation::default()).expect("tokenizes");
    let score = |packing: bool| {
        let sft = Sft::new(Vec::<Tokenized>::new(), eval.clone(), packing, 64, 2, 4);
        let rows = sft.eval_rows.len();
        let Metrics::LanguageModel(m) =
            pollster::block_on(sft.evaluate(&chat.model, &hearth_train::Single))
                .expect("evaluates")
        else {
            panic!("not a language-model evaluation")
        };
        (rows, m)
    };
    let (unpacked_rows, unpacked) = score(false);
    let (packed_rows, packed) = score(true);
    assert_eq!(unpacked_rows, 16);
    assert!(packed_rows < unpacked_rows, "{packed_rows} rows");
    assert_eq!(packed.tokens, unpacked.tokens);
    assert!(
        (packed.loss - unpacked.loss).abs() < 1e-5,
        "{} vs {}",
        packed.loss,
        unpacked.loss
    );
}

/// What a run of [`run_on`] saw: every step's loss, every evaluation's `(step, loss)`, and the
/// planner's event: the bytes it checked, whether `train.fit` changed the job, and whether the
/// run checkpoints.
struct Seen {
    losses: Vec<f32>,
    evals: Vec<(usize, f64)>,
    planned: Option<(u64, bool, bool)>,
}

/// `job` run on the tiny chat model over the capitals conversations against `limits`.
fn run_on(job: &JobSpec, limits: &hearth_train::plan::Limits) -> Result<Seen, String> {
    let device = Device::flex().autodiff();
    let model = named_files();
    let data = std::fs::read(dir().join("../capitals_sft.jsonl")).expect("data");
    let mut seen = Seen {
        losses: Vec::new(),
        evals: Vec::new(),
        planned: None,
    };
    let out = pollster::block_on(hearth_train::start(
        job,
        hearth_train::RunInputs {
            model,
            data,
            init_adapter: None,
        },
        &device,
        limits,
        None,
        hearth_train::RunHooks {
            on_event: &mut |e| {
                match e {
                    Event::Step { loss, .. } => seen.losses.push(*loss),
                    Event::Evaluated {
                        step,
                        metrics: Metrics::LanguageModel(m),
                    } => seen.evals.push((*step, m.loss)),
                    Event::Planned {
                        plan,
                        changed,
                        gradient_checkpointing,
                        ..
                    } => {
                        seen.planned = Some((plan.checked_bytes, *changed, *gradient_checkpointing))
                    }
                    _ => {}
                }
                ControlFlow::Continue(())
            },
            on_checkpoint: &mut |_| Ok(()),
            collective: &hearth_train::Single,
            stop: None,
        },
    ))
    .map_err(|e| e.to_string())?;
    assert_eq!(out.summary.steps, seen.losses.len());
    Ok(seen)
}

/// [`run_on`] without a memory budget: every step's loss and every evaluation.
fn run(job: &JobSpec) -> (Vec<f32>, Vec<(usize, f64)>) {
    let seen = run_on(
        job,
        &hearth_train::plan::Limits::native_cpu(None, "not checked"),
    )
    .expect("trains");
    (seen.losses, seen.evals)
}

/// The SFT loop: an evaluation of the base model at step 0, then training that lowers the
/// validation loss, with and without packing.
#[test]
fn the_sft_loop_lowers_validation_loss() {
    for packing in [false, true] {
        let (losses, evals) = run(&job(packing));
        assert_eq!(losses.len(), 40);
        assert_eq!(evals.first().map(|e| e.0), Some(0));
        assert_eq!(evals.last().map(|e| e.0), Some(40));
        let (before, after) = (evals[0].1, evals[evals.len() - 1].1);
        assert!(
            after < before - 0.1,
            "packing {packing}: validation loss {before} -> {after}"
        );
    }
}

/// `train.gradient_checkpointing` changes memory, not training: with LoRA dropout, packing, two
/// micro-batches a step, and an f32 or a q4 base, every step's loss and the validation loss
/// after six steps equal a run without it (within float rounding: the checkpointed pass sums
/// its gradients in another order).
#[test]
fn gradient_checkpointing_trains_as_a_run_without_it() {
    for quantize in [None, Some(hearth_models::quant::BaseQuant::Q4)] {
        let mut job = job(true);
        job.lora.lora_dropout = 0.1;
        job.train.steps = Some(6);
        job.train.batch_size = 2;
        job.train.gradient_accumulation = 2;
        job.train.eval_every = 6;
        job.model.quantize = quantize;
        let (plain_losses, plain_evals) = run(&job);
        job.train.gradient_checkpointing = true;
        let (losses, evals) = run(&job);
        assert_eq!(losses.len(), 6);
        for (a, b) in losses.iter().zip(&plain_losses) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs(),
                "{quantize:?}: {losses:?} vs {plain_losses:?}"
            );
        }
        assert_eq!(evals.len(), plain_evals.len());
        let (a, b) = (
            evals.last().expect("evaluated").1,
            plain_evals.last().expect("evaluated").1,
        );
        assert!(
            (a - b).abs() <= 1e-5 * b.abs(),
            "{quantize:?}: validation loss {a} vs {b}"
        );
    }
}

/// Issue 20's run: 80 conversations whose prompts are long e-mails, answered in one word, at a
/// max length of 128. Under the default truncation every conversation keeps its answer (the
/// start of the prompt goes), so the run trains on all 64 training conversations and scores
/// all 16 held-out ones, and its `started` event says what was cut before the first step.
#[test]
fn long_prompts_are_cut_and_every_answer_is_kept() {
    let device = Device::flex().autodiff();
    let job = serde_json::json!({
        "model": {"path": "tests/fixtures/tiny-chat"},
        "data": {"path": "long_emails_sft.jsonl", "eval_rows": 16},
        "task": {"kind": "sft"},
        "lora": {"r": 2, "lora_alpha": 4.0, "lora_dropout": 0.0, "target_modules": ["q_proj"]},
        "train": {"steps": 1, "batch_size": 8, "max_length": 128, "warmup_steps": 0,
                  "eval_every": 1, "checkpoint_every": 0}
    });
    let job = JobSpec::parse(&job.to_string()).expect("job");
    let model = named_files();
    let data = std::fs::read(dir().join("../long_emails_sft.jsonl")).expect("data");
    let mut events = Vec::new();
    pollster::block_on(hearth_train::start(
        &job,
        hearth_train::RunInputs {
            model,
            data,
            init_adapter: None,
        },
        &device,
        &hearth_train::plan::Limits::native_cpu(None, "not checked"),
        None,
        hearth_train::RunHooks {
            on_event: &mut |e| {
                events.push(e.clone());
                ControlFlow::Continue(())
            },
            on_checkpoint: &mut |_| Ok(()),
            collective: &hearth_train::Single,
            stop: None,
        },
    ))
    .expect("trains");
    let started = events
        .iter()
        .position(|e| matches!(e, Event::Started { .. }))
        .expect("started");
    let first_step = events
        .iter()
        .position(|e| matches!(e, Event::Step { .. }))
        .expect("a step");
    assert!(started < first_step);
    let Event::Started {
        train_rows,
        eval_rows,
        conversations: Some(cuts),
        ..
    } = &events[started]
    else {
        panic!("a chat run's started event carries its cuts")
    };
    assert_eq!((*train_rows, *eval_rows), (64, 16));
    for (part, n) in [(&cuts.train, 64), (&cuts.eval, 16)] {
        assert_eq!(part.conversations, n);
        assert_eq!((part.prompt_cut, part.answer_cut, part.dropped), (n, 0, 0));
        assert!(part.longest > 128, "{}", part.longest);
    }
    assert!(
        cuts.suggestion
            .as_deref()
            .is_some_and(|s| s.contains("max length"))
    );
    let json = serde_json::to_value(&events[started]).expect("serializes");
    assert_eq!(json["conversations"]["train"]["prompt_cut"], 64);
    // Every held-out conversation is scored, before training and after.
    let scored: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::Evaluated {
                metrics: Metrics::LanguageModel(m),
                ..
            } => Some(m.n),
            _ => None,
        })
        .collect();
    assert!(
        !scored.is_empty() && scored.iter().all(|&n| n == 16),
        "{scored:?}"
    );
}

/// The planner checks a chat job too: with a memory budget between the estimates of the job
/// with and without gradient checkpointing, `train.fit = "check"` refuses the job and names
/// the setting, and `"auto"` turns checkpointing on and trains exactly as the job that asked
/// for it.
#[test]
fn the_planner_turns_on_gradient_checkpointing_when_a_chat_job_does_not_fit() {
    use hearth_train::plan::Limits;
    let mut job = job(true);
    job.train.steps = Some(2);
    job.train.eval_every = 2;
    job.train.fit = hearth_train::job::FitMode::Off;
    let unlimited = Limits::native_cpu(None, "not checked");
    let plain = run_on(&job, &unlimited)
        .expect("trains")
        .planned
        .expect("planned")
        .0;
    let mut checkpointed_job = job.clone();
    checkpointed_job.train.gradient_checkpointing = true;
    let checkpointed = run_on(&checkpointed_job, &unlimited).expect("trains");
    let lower = checkpointed.planned.expect("planned").0;
    assert!(
        lower < plain,
        "checkpointing estimated {lower} vs {plain} bytes"
    );

    let budget = Limits::native_cpu(Some((lower + plain) / 2), "the test's budget");
    job.train.fit = hearth_train::job::FitMode::Check;
    let refused = run_on(&job, &budget).err().expect("refused");
    assert!(
        refused.contains("does not fit") && refused.contains("train.gradient_checkpointing = true"),
        "{refused}"
    );
    job.train.fit = hearth_train::job::FitMode::Auto;
    let auto = run_on(&job, &budget).expect("trains");
    assert_eq!(auto.planned.map(|p| (p.1, p.2)), Some((true, true)));
    assert_eq!(auto.losses, checkpointed.losses);
    assert_eq!(auto.evals, checkpointed.evals);
}

/// The page plans a chat job before Start from the model's small files: a GGUF file's first
/// bytes (its header) plan as the whole file does and as the run's own plan of the loaded
/// model; a prefix that cuts the header is a clear error; a safetensors chat model plans from
/// its `config.json`.
#[test]
fn a_chat_job_is_planned_from_a_gguf_files_first_bytes() {
    use hearth_train::plan::{Context, Limits, plan_chat, plan_named};
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny-gemma-chat.gguf");
    let bytes = std::fs::read(path).expect("fixture");
    let header = hearth_gguf::Gguf::parse(&bytes)
        .expect("parses")
        .data_offset as usize;
    assert!(header < bytes.len() / 2, "{header} of {}", bytes.len());
    let mut job = job(true);
    job.model.path = "tiny-gemma-chat.gguf".into();
    let limits = Limits::browser(Some(1 << 30), Some(1 << 30));
    let ctx = Context {
        num_outputs: 1,
        model_file_bytes: bytes.len() as u64,
        data_file_bytes: 4000,
        longest_row: Some(40),
        ..Default::default()
    };
    let named = |len: usize| vec![("tiny-gemma-chat.gguf".to_string(), bytes[..len].to_vec())];
    let whole = plan_named(&job, &named(bytes.len()), &limits, &ctx).expect("plans");
    let config = hearth_models::chat_model::config_from_named(&named(bytes.len())).expect("config");
    assert_eq!(whole, plan_chat(&job, &config, &limits, &ctx));
    assert!(whole.fits && whole.estimate.total_bytes() > 0);
    assert_eq!(
        plan_named(&job, &named(header), &limits, &ctx).expect("plans"),
        whole
    );
    let cut = plan_named(&job, &named(header / 2), &limits, &ctx).expect_err("cut header");
    assert!(cut.to_string().contains("truncated"), "{cut}");

    let mut hf = job.clone();
    hf.model.path = "tests/fixtures/tiny-chat".into();
    let config_json = named_files()
        .into_iter()
        .filter(|(n, _)| n == "config.json")
        .collect::<Vec<_>>();
    let planned = plan_named(&hf, &config_json, &limits, &ctx).expect("plans");
    let config = hearth_models::chat_model::config_from_named(&named_files()).expect("config");
    assert_eq!(planned, plan_chat(&hf, &config, &limits, &ctx));
}
