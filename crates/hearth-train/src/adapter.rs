//! A run's adapter as files, both ways: what a run leaves ([`AdapterFiles`]: PEFT's adapter,
//! a head or a full model, with Hearth's run record) and loading such files back onto their
//! base model ([`load_classifier`], [`load_chat`]), after checking that they fit the job
//! ([`check_init_adapter`]).

use burn::tensor::Device;
use hearth_models::ModelFiles;
use hearth_models::bert::BertForSequenceClassification;
use hearth_models::chat_model::ChatModel;
use hearth_models::peft::AdapterConfig;
use hearth_models::tokenizer::TextTokenizer;
use serde::Serialize;

use crate::base::{NamedFiles, bert_files, file, lm_files};
use crate::{JobSpec, RunRecord, Task, TrainError};

/// The files a run leaves, as bytes: by strategy, PEFT's adapter (`adapter_config.json`,
/// `adapter_model.safetensors`), the head (`head.safetensors`) or a complete model directory
/// (`config.json`, `model.safetensors`, `tokenizer.json`); and `hearth_run.json`, the job and
/// the label names.
#[derive(Debug, Clone)]
pub struct AdapterFiles {
    /// What the run trained, which names the files.
    pub strategy: hearth_models::Strategy,
    /// `adapter_config.json` for LoRA runs; empty otherwise.
    pub config: String,
    /// The trained weights, in the file [`hearth_models::Strategy::weights_file`] names.
    pub weights: Vec<u8>,
    /// `hearth_run.json`: the job and the label names.
    pub record: String,
    /// A full model's `config.json` and `tokenizer.json` (final output only, not checkpoints).
    pub extra: Vec<(&'static str, Vec<u8>)>,
}

impl AdapterFiles {
    /// PEFT's config file name.
    pub const CONFIG: &str = "adapter_config.json";
    /// PEFT's weights file name.
    pub const WEIGHTS: &str = "adapter_model.safetensors";
    /// Hearth's run record file name.
    pub const RECORD: &str = "hearth_run.json";

    /// What a model trained by `job` saves (PEFT's format for LoRA), plus the run record.
    /// `base` is the base model's files (a full model's directory takes its config and
    /// tokenizer).
    pub async fn export(
        job: &JobSpec,
        model: &BertForSequenceClassification,
        labels: &[String],
        base: &ModelFiles,
    ) -> Result<Self, TrainError> {
        let trained = hearth_models::export_trained(
            model,
            job.train.strategy,
            &job.lora,
            base,
            &job.model.path,
            labels,
            job.task.problem_type().ok_or_else(|| {
                TrainError::Job("an SFT run exports a causal-LM adapter, not a classifier".into())
            })?,
        )
        .await?;
        let mut files = Self::with_weights(job, labels, trained.weights().to_vec())?;
        if let hearth_models::Trained::Model {
            config, tokenizer, ..
        } = trained
        {
            files.extra = vec![("config.json", config), ("tokenizer.json", tokenizer)];
        }
        Ok(files)
    }

    /// The files around already exported weights of the job's strategy.
    pub fn with_weights(
        job: &JobSpec,
        labels: &[String],
        weights: Vec<u8>,
    ) -> Result<Self, TrainError> {
        let strategy = job.train.strategy;
        let config = if job.task.is_sft() {
            pretty(&AdapterConfig::for_causal_lm(&job.lora, &job.model.path))?
        } else if strategy == hearth_models::Strategy::Lora {
            pretty(&AdapterConfig::for_classification(
                &job.lora,
                &job.model.path,
            ))?
        } else {
            String::new()
        };
        let record = RunRecord {
            job: job.clone(),
            labels: labels.to_vec(),
        };
        Ok(Self {
            strategy,
            config,
            weights,
            record: pretty(&record)?,
            extra: Vec::new(),
        })
    }

    /// Every file by name, the run record last.
    pub fn files(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut files = Vec::new();
        if !self.config.is_empty() {
            files.push((Self::CONFIG, self.config.clone().into_bytes()));
        }
        files.push((self.strategy.weights_file(), self.weights.clone()));
        files.extend(self.extra.iter().cloned());
        files.push((Self::RECORD, self.record.clone().into_bytes()));
        files
    }
}

fn pretty<T: Serialize>(value: &T) -> Result<String, TrainError> {
    serde_json::to_string_pretty(value).map_err(|e| TrainError::Job(e.to_string()))
}

/// Checks that an adapter directory's files (`adapter_config.json`, `adapter_model.safetensors`
/// and, when Hearth wrote it, `hearth_run.json`) can start the job: a LoRA job, the same rank,
/// alpha and targets, and (for a classifier) the same labels in the same order. Returns the
/// adapter's config and weights.
pub fn check_init_adapter(
    files: &NamedFiles,
    job: &JobSpec,
    labels: &[String],
) -> Result<(String, Vec<u8>), TrainError> {
    let bad = |msg: String| Err(TrainError::Job(msg));
    if job.train.strategy != hearth_models::Strategy::Lora {
        return bad(format!(
            "model.init_adapter continues LoRA adapters; this job trains with strategy {:?}",
            job.train.strategy
        ));
    }
    let config_bytes = file(files, AdapterFiles::CONFIG)?;
    let config = AdapterConfig::from_json(config_bytes)?;
    let theirs = config.settings();
    // PEFT stores target_modules as a set: compare them as one.
    let set = |t: &[String]| t.iter().cloned().collect::<std::collections::BTreeSet<_>>();
    if (theirs.r, theirs.lora_alpha, set(&theirs.target_modules))
        != (
            job.lora.r,
            job.lora.lora_alpha,
            set(&job.lora.target_modules),
        )
    {
        return bad(format!(
            "the adapter has r = {}, alpha = {} on {:?}; set lora.r, lora.lora_alpha and \
             lora.target_modules (--r, --alpha, --targets) to match it",
            theirs.r, theirs.lora_alpha, theirs.target_modules
        ));
    }
    if let Ok(bytes) = file(files, AdapterFiles::RECORD) {
        let record: RunRecord = serde_json::from_slice(bytes)
            .map_err(|e| TrainError::Job(format!("{}: {e}", AdapterFiles::RECORD)))?;
        if record.labels != labels {
            return bad(format!(
                "the adapter was trained on labels {}; this data has {}",
                hearth_data::shown_list(&record.labels),
                hearth_data::shown_list(labels)
            ));
        }
    }
    let config = String::from_utf8(config_bytes.to_vec())
        .map_err(|e| TrainError::Job(format!("{}: {e}", AdapterFiles::CONFIG)))?;
    Ok((config, file(files, AdapterFiles::WEIGHTS)?.to_vec()))
}

/// The run record of an adapter that PEFT wrote (it has no `hearth_run.json`): the base model
/// at `model_path`, the labels `labels` or transformers' default names, as many as the
/// adapter's head has outputs (a one-output head without labels is a regression head).
pub fn peft_record(
    model_path: &str,
    labels: Option<&[String]>,
    weights: &[u8],
) -> Result<RunRecord, TrainError> {
    let bad = |msg: String| TrainError::Job(msg);
    let file = safetensors::SafeTensors::deserialize(weights)
        .map_err(|e| bad(format!("reading {}: {e}", AdapterFiles::WEIGHTS)))?;
    let head = file
        .tensor("base_model.model.classifier.bias")
        .map_err(|_| {
            bad("the adapter has no classifier head (base_model.model.classifier.bias)".into())
        })?;
    let num_labels = head.shape().first().copied().unwrap_or(0);
    if num_labels == 1 && labels.is_none() {
        // One output: transformers' regression head.
        let regression = serde_json::from_value(serde_json::json!({"kind": "regression"}))
            .map_err(|e| bad(e.to_string()))?;
        return Ok(RunRecord {
            job: JobSpec::default_for(regression, model_path, "-")?,
            labels: Vec::new(),
        });
    }
    let job = JobSpec::default_for(Task::Classification, model_path, "-")?;
    let labels = match labels {
        Some(labels) if labels.len() == num_labels => labels.to_vec(),
        Some(labels) => {
            return Err(bad(format!(
                "--labels names {} labels; the adapter's head has {num_labels}",
                labels.len()
            )));
        }
        None => (0..num_labels).map(|i| format!("LABEL_{i}")).collect(),
    };
    Ok(RunRecord { job, labels })
}

/// A trained classifier from an adapter directory's files (`record`'s strategy names the
/// weights file) on its base model's files, with the tokenizer, on `device`. Returns the job
/// as the adapter holds it (for LoRA, the adapter's own rank and targets).
pub fn load_classifier(
    record: &RunRecord,
    adapter: &NamedFiles,
    base: NamedFiles,
    device: &Device,
) -> Result<(JobSpec, BertForSequenceClassification, TextTokenizer), TrainError> {
    if record.job.task.is_sft() {
        return Err(TrainError::Job(
            "this is a chat model's (SFT) adapter: try it with `hearth generate --adapter`".into(),
        ));
    }
    let mut job = record.job.clone();
    let strategy = job.train.strategy;
    if strategy == hearth_models::Strategy::Lora {
        job.lora = AdapterConfig::from_json(file(adapter, AdapterFiles::CONFIG)?)?.settings();
    }
    let weights = file(adapter, strategy.weights_file())?;
    let base = bert_files(base)?;
    check_classifier_model(
        &job,
        &base,
        "train.max_length (of the adapter's hearth_run.json)",
    )?;
    let tokenizer = TextTokenizer::from_bytes(&base.tokenizer, job.train.max_length)?;
    let outputs = crate::task::num_outputs(&job.task, record.labels.len());
    let model = hearth_models::load_trained(
        &base,
        weights,
        outputs,
        job.model.pooling,
        &job.lora,
        strategy,
        device,
    )?;
    Ok((job, model, tokenizer))
}

/// Checks a classifier job against its model's files once they are read: rows of
/// `train.max_length` (`setting` names it for the message) must fit the model's positions, and
/// the weights must hold no layer the config lacks. Returns a warning naming the tensors of
/// `model.safetensors` that nothing uses, beyond the heads a BERT checkpoint usually carries.
pub fn check_classifier_model(
    job: &JobSpec,
    files: &ModelFiles,
    setting: &'static str,
) -> Result<Option<String>, TrainError> {
    let config = hearth_models::bert::BertConfig::from_json(&files.config)?;
    hearth_models::compat::check_length(
        setting,
        job.train.max_length,
        config.max_position_embeddings,
        "max_position_embeddings",
    )
    .map_err(hearth_models::ModelError::from)?;
    let names = hearth_models::compat::tensor_names(&files.weights).unwrap_or_default();
    let unused = hearth_models::compat::bert_weights(&config, &names)
        .map_err(hearth_models::ModelError::from)?;
    Ok(unused_warning(&unused))
}

/// Checks an SFT job against its chat model's files before they are loaded: the weights of an
/// HF directory must hold no layer the config lacks (a GGUF file is checked as it loads).
/// Returns a warning naming the tensors nothing uses, as [`check_classifier_model`].
pub fn check_chat_files(files: &NamedFiles) -> Result<Option<String>, TrainError> {
    let (Ok(config), Ok(weights)) = (file(files, "config.json"), file(files, "model.safetensors"))
    else {
        return Ok(None);
    };
    let config = hearth_models::llama::LlamaConfig::from_json(config)?;
    let names = hearth_models::compat::tensor_names(weights).unwrap_or_default();
    let unused = hearth_models::compat::llama_weights((&config).into(), &names)
        .map_err(hearth_models::ModelError::from)?;
    Ok(unused_warning(&unused))
}

/// The warning for tensors of `model.safetensors` that nothing uses, when there are any.
fn unused_warning(unused: &[String]) -> Option<String> {
    if unused.is_empty() {
        return None;
    }
    let shown: Vec<String> = unused
        .iter()
        .take(5)
        .map(|n| hearth_data::shown(n, hearth_data::NAME_CHARS))
        .collect();
    Some(format!(
        "model.safetensors holds {} tensor(s) this model does not use ({}{}): is config.json \
         the one these weights came with?",
        unused.len(),
        shown.join(", "),
        if unused.len() > shown.len() {
            ", …"
        } else {
            ""
        }
    ))
}

/// Refuses a checkpoint whose trained weights or optimizer state hold NaN or an infinity,
/// naming the file and the tensor: continuing from it would only compute NaN.
pub fn check_checkpoint_finite(
    weights_file: &str,
    weights: &[u8],
    optimizer_file: &str,
    optimizer: &[u8],
) -> Result<(), TrainError> {
    hearth_models::host::check_finite(weights, weights_file)
        .and_then(|()| hearth_models::host::check_finite(optimizer, optimizer_file))
        .map_err(|e| TrainError::Checkpoint(e.to_string()))
}

/// `tokenizer` with the job's `task.chat_template`, when it sets one (it wins over the model's).
pub(crate) fn with_job_template(
    tokenizer: hearth_models::lm_tokenizer::LmTokenizer,
    chat_template: Option<&str>,
) -> Result<hearth_models::lm_tokenizer::LmTokenizer, TrainError> {
    Ok(match chat_template {
        Some(template) => tokenizer.with_chat_template(template)?,
        None => tokenizer,
    })
}

/// The job's chat model from its files on `device`, its tokenizer with the job's chat
/// template, LoRA adapters attached: from `adapter` (`adapter_config.json` text and
/// `adapter_model.safetensors` bytes) when given, else fresh from the job's seed.
pub fn load_chat(
    job: &JobSpec,
    files: NamedFiles,
    adapter: Option<(&str, &[u8])>,
    device: &Device,
) -> Result<ChatModel, TrainError> {
    let Task::Sft { chat_template, .. } = &job.task else {
        return Err(TrainError::Job("the job's task is not sft".into()));
    };
    device.seed(job.train.seed);
    let mut chat = ChatModel::load_quantized(
        &lm_files(files)?,
        job.lora.lora_dropout,
        job.model.quantize,
        device,
    )?;
    if let Some(limit) = chat.config.max_position_embeddings {
        hearth_models::compat::check_length(
            "train.max_length (--max-length)",
            job.train.max_length,
            limit,
            "context length (max_position_embeddings)",
        )
        .map_err(hearth_models::ModelError::from)?;
    }
    chat.tokenizer = with_job_template(chat.tokenizer, chat_template.as_deref())?;
    chat.model = match adapter {
        Some((config, weights)) => {
            hearth_models::peft::load_adapter(chat.model, config.as_bytes(), weights)?
        }
        None => chat
            .model
            .with_lora(&job.lora)?
            .seeded_lora(job.train.seed)?,
    };
    Ok(chat)
}
