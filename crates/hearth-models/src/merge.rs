//! Merging an adapter into its base model: a complete HF `BertForSequenceClassification`
//! directory that transformers loads without PEFT.
//!
//! Every adapted weight becomes `W + s·A·B` (burn's `materialize`), and every parameter is
//! written under its HF name ([`crate::bert::names`], the table loading reads too) in PyTorch's
//! layout: linear weights transposed to `[out, in]`. `config.json` is the base's with the
//! head's labels added. Reading back is async, so the page can merge too.

use burn::module::Module;
use burn::tensor::Device;
use serde_json::{Map, Value};

use crate::bert::{
    self, BertConfig, BertForSequenceClassification, BertModel, Pooling, burn_to_hf, import_head,
};
use crate::error::{parse_config, write_config};
use crate::host::pytorch_safetensors;
use crate::{ModelError, ModelFiles};

/// Whether a rank-2 parameter is an embedding table (stored as is) rather than a linear
/// weight (stored transposed).
fn is_embedding(path: &str) -> bool {
    path.contains("_embeddings.")
}

/// `config.json` and `model.safetensors` of a merged model.
#[derive(Debug, Clone)]
pub struct MergedModel {
    /// `config.json`.
    pub config: Vec<u8>,
    /// `model.safetensors`.
    pub weights: Vec<u8>,
}

/// What the head of a merged model predicts: transformers' `problem_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProblemType {
    /// One label per text (softmax).
    #[default]
    SingleLabel,
    /// Any labels per text (a sigmoid each).
    MultiLabel,
    /// A number (one output).
    Regression,
}

impl ProblemType {
    /// The head's output names: `labels`, or for regression without names transformers'
    /// default `LABEL_0`.
    pub fn head_labels(self, labels: &[String]) -> Vec<String> {
        if self == Self::Regression && labels.is_empty() {
            vec!["LABEL_0".to_string()]
        } else {
            labels.to_vec()
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::SingleLabel => "single_label_classification",
            Self::MultiLabel => "multi_label_classification",
            Self::Regression => "regression",
        }
    }
}

/// Merges the model's adapters into its weights and writes it as HF's
/// `BertForSequenceClassification` with `labels` as `id2label` (for regression, which has no
/// label names, transformers' default `LABEL_0`).
///
/// Only CLS pooling exists in transformers' class; a mean-pooling head is refused.
pub async fn merge_classifier(
    model: BertForSequenceClassification,
    base_config: &[u8],
    labels: &[String],
    problem: ProblemType,
) -> Result<MergedModel, ModelError> {
    let labels = &problem.head_labels(labels);
    if model.pooling() != Pooling::Cls {
        return Err(ModelError::UnsupportedConfig(
            "this adapter's head uses mean pooling, which transformers' \
             BertForSequenceClassification cannot express (it pools [CLS] through the pooler); \
             train with CLS pooling to merge, or use the adapter as is"
                .into(),
        ));
    }
    if labels.len() != model.num_labels() {
        return Err(ModelError::UnsupportedConfig(format!(
            "{} label names for a head with {} outputs",
            labels.len(),
            model.num_labels()
        )));
    }
    Ok(MergedModel {
        config: classifier_config(base_config, labels, problem)?,
        weights: hf_weights(&model.materialize()).await?,
    })
}

/// `model.safetensors` of a model without adapters: every parameter under its HF name, in
/// PyTorch's layout (what [`merge_classifier`] writes after merging, and what a full
/// fine-tuning run saves).
pub async fn hf_weights(model: &BertForSequenceClassification) -> Result<Vec<u8>, ModelError> {
    pytorch_safetensors(model, burn_to_hf, is_embedding).await
}

/// The base `config.json` turned into a sequence-classification config with `labels`.
pub(crate) fn classifier_config(
    base: &[u8],
    labels: &[String],
    problem: ProblemType,
) -> Result<Vec<u8>, ModelError> {
    let mut config: Map<String, Value> = parse_config(base, bert::FAMILY)?;
    let id2label: Map<String, Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), Value::from(l.as_str())))
        .collect();
    let label2id: Map<String, Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), Value::from(i)))
        .collect();
    config.insert(
        "architectures".into(),
        Value::from(vec!["BertForSequenceClassification"]),
    );
    config.insert("id2label".into(), Value::Object(id2label));
    config.insert("label2id".into(), Value::Object(label2id));
    config.insert("problem_type".into(), Value::from(problem.name()));
    write_config(&Value::Object(config), bert::FAMILY)
}

/// Loads a complete HF `BertForSequenceClassification` directory (a merged model, say): the
/// encoder and pooler, and the head with as many outputs as `config.json` has labels.
pub fn load_classifier(
    files: &ModelFiles,
    device: &Device,
) -> Result<(BertForSequenceClassification, Vec<String>), ModelError> {
    let config = BertConfig::from_json(&files.config)?;
    let raw: Value = parse_config(&files.config, bert::FAMILY)?;
    let id2label = raw
        .get("id2label")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            ModelError::UnsupportedConfig(
                "config.json has no id2label: this is not a sequence-classification model".into(),
            )
        })?;
    let mut labels = Vec::with_capacity(id2label.len());
    for i in 0..id2label.len() {
        let name = id2label
            .get(&i.to_string())
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ModelError::UnsupportedConfig(format!("config.json id2label lacks id {i}"))
            })?;
        labels.push(name.to_string());
    }
    let encoder = BertModel::init(&config, 0.0, device)?.load_safetensors(files.weights.clone())?;
    let model =
        BertForSequenceClassification::new(encoder, &config, labels.len(), Pooling::Cls, device)?;
    // The head is read as a head-only run's is: by HF name, shapes checked.
    let model = import_head(model, &files.weights)?;
    Ok((model, labels))
}
