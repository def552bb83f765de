//! What a model can take, checked before it runs: the longest row its positions allow, and
//! whether the tensors of `model.safetensors` are the ones its `config.json` describes.
//!
//! A BERT has a learned embedding per position, so a row longer than
//! `max_position_embeddings` has no embedding for its last tokens (burn's gather would panic);
//! a Llama's rotary positions go on, but past its context length the model was never trained.
//! Both are refused by [`check_length`], naming the setting and the model's limit.
//!
//! The weights are checked by name only, from the file's header ([`tensor_names`]), so the
//! check is cheap and runs on any config, however large: a tensor of a layer the config does
//! not have (`num_hidden_layers` smaller than the checkpoint's) is an error, because loading
//! would silently keep the first layers and drop the rest ([`CompatError::UnusedLayers`]).
//! Tensors every checkpoint of the family may carry and no classifier or decoder uses (BERT's
//! pre-training heads `cls.*`, an earlier classification head, `position_ids`, rotary
//! frequencies, an output projection tied to the embedding) are expected and pass; any other
//! tensor nothing uses is returned, for the caller to report as a warning.

use crate::bert::BertConfig;
use crate::bert::names::checkpoint_to_encoder;
use crate::llama::LlamaConfig;

/// A job asking for more than a model gives, or weights that do not fit the config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompatError {
    /// Rows longer than the model's positions.
    #[error(
        "{setting} is {length}, more than the model's {limit_name} ({limit}): the model has \
         no position past {limit}; set {setting} to at most {limit}"
    )]
    TooLong {
        /// The setting that asks for the length, as the user writes it.
        setting: &'static str,
        /// The length asked for.
        length: usize,
        /// The model's limit.
        limit: usize,
        /// Where the model states its limit (`max_position_embeddings`, the context length).
        limit_name: &'static str,
    },
    /// Tensors of layers the config does not have.
    #[error(
        "config.json has num_hidden_layers = {config}, but model.safetensors holds layers up \
         to {file}: its {} tensor(s) of the layers past {config} would go unused (e.g. {}); \
         use the config.json these weights came with",
        .tensors.len(),
        .tensors.iter().take(4).map(|t| crate::error::quoted(t)).collect::<Vec<_>>().join(", ")
    )]
    UnusedLayers {
        /// Layers the config states.
        config: usize,
        /// Layers the file holds (its highest layer index plus one).
        file: usize,
        /// The tensors of the extra layers, by their name in the file.
        tensors: Vec<String>,
    },
}

/// Refuses rows of `length` tokens (what `setting` asks for) on a model whose positions end at
/// `limit` (stated as `limit_name`).
pub fn check_length(
    setting: &'static str,
    length: usize,
    limit: usize,
    limit_name: &'static str,
) -> Result<(), CompatError> {
    if length > limit {
        return Err(CompatError::TooLong {
            setting,
            length,
            limit,
            limit_name,
        });
    }
    Ok(())
}

/// The tensor names of a safetensors file, read from its header; `None` when the header cannot
/// be read (the loader then reports the file as unreadable).
pub fn tensor_names(bytes: &[u8]) -> Option<Vec<String>> {
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes).ok()?;
    Some(metadata.tensors().into_keys().collect())
}

/// A BERT checkpoint's tensor names against `config`: an error when the file holds layers the
/// config does not have; otherwise the tensors nothing uses that a BERT checkpoint does not
/// usually carry (for a warning), by their name in the file.
pub fn bert_weights<S: AsRef<str>>(
    config: &BertConfig,
    names: &[S],
) -> Result<Vec<String>, CompatError> {
    const TOP: &[&str] = &[
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.layer_norm.gamma",
        "embeddings.layer_norm.beta",
        "pooler.dense.weight",
        "pooler.dense.bias",
    ];
    const LAYER: &[&str] = &[
        "attention.self_attention.query.weight",
        "attention.self_attention.query.bias",
        "attention.self_attention.key.weight",
        "attention.self_attention.key.bias",
        "attention.self_attention.value.weight",
        "attention.self_attention.value.bias",
        "attention.output.dense.weight",
        "attention.output.dense.bias",
        "attention.output.layer_norm.gamma",
        "attention.output.layer_norm.beta",
        "intermediate.dense.weight",
        "intermediate.dense.bias",
        "output.dense.weight",
        "output.dense.bias",
        "output.layer_norm.gamma",
        "output.layer_norm.beta",
    ];
    let expected_unused = |path: &str| {
        path == "embeddings.position_ids"
            || path.starts_with("cls.")
            || path.starts_with("classifier.")
    };
    classify(
        names,
        config.num_hidden_layers,
        checkpoint_to_encoder,
        "encoder.layer.",
        |path| TOP.contains(&path),
        |rest| LAYER.contains(&rest),
        expected_unused,
    )
}

/// What of a Llama's config decides its tensors: the layers, whether the output projection is
/// the embedding, and which projections have biases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlamaLayout {
    /// Decoder layers.
    pub layers: usize,
    /// Whether `lm_head` is the input embedding.
    pub tied: bool,
    /// Whether the attention projections have biases.
    pub attention_bias: bool,
    /// Whether the MLP projections have biases.
    pub mlp_bias: bool,
    /// Whether the layers have Gemma 3's norms (`q_norm`, `k_norm`, `pre_feedforward_layernorm`,
    /// `post_feedforward_layernorm`).
    pub gemma: bool,
}

impl From<&LlamaConfig> for LlamaLayout {
    fn from(c: &LlamaConfig) -> Self {
        Self {
            layers: c.num_hidden_layers,
            tied: c.tie_word_embeddings,
            attention_bias: c.attention_bias,
            mlp_bias: c.mlp_bias,
            gemma: c.is_gemma3(),
        }
    }
}

/// A Llama checkpoint's tensor names against its layout, as [`bert_weights`]: an error for
/// layers the config does not have, the unexpected unused tensors otherwise.
pub fn llama_weights<S: AsRef<str>>(
    layout: LlamaLayout,
    names: &[S],
) -> Result<Vec<String>, CompatError> {
    let top = |path: &str| {
        matches!(path, "model.embed_tokens.weight" | "model.norm.weight")
            || (path == "lm_head.weight" && !layout.tied)
    };
    let in_layer = |rest: &str| {
        let Some((module, param)) = rest.rsplit_once('.') else {
            return false;
        };
        let attention = matches!(
            module,
            "self_attn.q_proj" | "self_attn.k_proj" | "self_attn.v_proj" | "self_attn.o_proj"
        );
        let mlp = matches!(module, "mlp.gate_proj" | "mlp.up_proj" | "mlp.down_proj");
        let norm = matches!(module, "input_layernorm" | "post_attention_layernorm")
            || (layout.gemma
                && matches!(
                    module,
                    "self_attn.q_norm"
                        | "self_attn.k_norm"
                        | "pre_feedforward_layernorm"
                        | "post_feedforward_layernorm"
                ));
        match param {
            "weight" => attention || mlp || norm,
            "bias" => (attention && layout.attention_bias) || (mlp && layout.mlp_bias),
            _ => false,
        }
    };
    let expected_unused = |path: &str| {
        path.ends_with("rotary_emb.inv_freq") || (path == "lm_head.weight" && layout.tied)
    };
    classify(
        names,
        layout.layers,
        |name| name.to_string(),
        "model.layers.",
        top,
        in_layer,
        expected_unused,
    )
}

/// Sorts a file's tensor names (each read as a model path by `to_path`) into used, layers past
/// `layers` (an error), expected unused and unexpected unused (returned). `layer_prefix` starts
/// a layer's paths (`encoder.layer.`), followed by its index; `top` says whether a path outside
/// the layers is used, `in_layer` whether a layer's path (after its index) is.
fn classify<S: AsRef<str>>(
    names: &[S],
    layers: usize,
    to_path: impl Fn(&str) -> String,
    layer_prefix: &str,
    top: impl Fn(&str) -> bool,
    in_layer: impl Fn(&str) -> bool,
    expected_unused: impl Fn(&str) -> bool,
) -> Result<Vec<String>, CompatError> {
    let mut extra: Vec<(usize, &str)> = Vec::new();
    let mut unexpected = Vec::new();
    for name in names {
        let name = name.as_ref();
        let path = to_path(name);
        let layer = path.strip_prefix(layer_prefix).and_then(|rest| {
            let (index, rest) = rest.split_once('.')?;
            Some((index.parse::<usize>().ok()?, rest))
        });
        let used = match layer {
            Some((index, _)) if index >= layers => {
                extra.push((index, name));
                continue;
            }
            Some((_, rest)) => in_layer(rest),
            None => top(&path),
        };
        if !used && !expected_unused(&path) {
            unexpected.push(name.to_string());
        }
    }
    if let Some(&(highest, _)) = extra.iter().max() {
        extra.sort();
        return Err(CompatError::UnusedLayers {
            config: layers,
            file: highest.saturating_add(1),
            tensors: extra.into_iter().map(|(_, n)| n.to_string()).collect(),
        });
    }
    unexpected.sort();
    Ok(unexpected)
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;
    use crate::bert::BertModel;
    use crate::host::named_params;
    use crate::llama::LlamaForCausalLM;

    fn bert(layers: usize) -> BertConfig {
        BertConfig::from_json(
            format!(
                r#"{{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": {layers},
                     "num_attention_heads": 2, "intermediate_size": 16,
                     "max_position_embeddings": 8}}"#
            )
            .as_bytes(),
        )
        .expect("config")
    }

    fn llama(extra: &str) -> LlamaConfig {
        LlamaConfig::from_json(
            format!(
                r#"{{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
                     "num_hidden_layers": 2, "num_attention_heads": 2 {extra}}}"#
            )
            .as_bytes(),
        )
        .expect("config")
    }

    /// The names a model of the family would load: every parameter path of a built model
    /// (read as a checkpoint with the encoder's names, which BERT's table maps to themselves).
    fn paths<M: burn::module::Module>(model: &M) -> Vec<String> {
        named_params(model).ids.into_keys().collect()
    }

    #[test]
    fn every_parameter_of_a_built_model_counts_as_used() {
        // The name lists above must not drift from the modules: a model's own paths are all used.
        let device = Device::flex();
        let encoder = BertModel::init(&bert(2), 0.0, &device).expect("bert");
        let names = paths(&encoder);
        assert_eq!(names.len(), 5 + 2 * 16 + 2);
        assert_eq!(bert_weights(&bert(2), &names), Ok(vec![]));
        for extra in ["", r#", "attention_bias": true, "mlp_bias": true"#] {
            let config = llama(extra);
            let model = LlamaForCausalLM::init(&config, 0.0, &device).expect("llama");
            let names = paths(&model);
            assert_eq!(llama_weights((&config).into(), &names), Ok(vec![]));
        }
    }

    #[test]
    fn layers_the_config_lacks_are_refused_by_name() {
        let device = Device::flex();
        let names = paths(&BertModel::init(&bert(3), 0.0, &device).expect("bert"));
        let err = bert_weights(&bert(1), &names).expect_err("two layers too many");
        let CompatError::UnusedLayers {
            config,
            file,
            tensors,
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!((*config, *file, tensors.len()), (1, 3, 2 * 16));
        assert!(
            tensors
                .iter()
                .all(|t| t.starts_with("encoder.layer.1.") || t.starts_with("encoder.layer.2.")),
            "{tensors:?}"
        );
        let message = err.to_string();
        assert!(message.contains("num_hidden_layers = 1"), "{message}");
        assert!(message.contains("layers up to 3"), "{message}");
        // transformers' names (with the classifier's `bert.` prefix and `LayerNorm`) too.
        let hf = [
            "bert.encoder.layer.0.output.LayerNorm.weight",
            "bert.encoder.layer.5.output.LayerNorm.weight",
        ];
        let err = bert_weights(&bert(1), &hf).expect_err("layer 5");
        assert!(
            err.to_string()
                .contains("bert.encoder.layer.5.output.LayerNorm.weight"),
            "{err}"
        );
        // A name from the file is quoted with its control characters escaped, and cut.
        let hostile = format!("encoder.layer.4.\u{1b}[2J{}", "x".repeat(10_000));
        let message = bert_weights(&bert(1), &[hostile])
            .expect_err("layer 4")
            .to_string();
        assert!(
            message.contains("\"encoder.layer.4.\\u{1b}[2J"),
            "{message}"
        );
        assert!(message.len() < 1000, "{} bytes", message.len());
        let config = llama("");
        let err = llama_weights(
            (&config).into(),
            &[
                "model.layers.1.mlp.up_proj.weight",
                "model.layers.2.mlp.up_proj.weight",
            ],
        )
        .expect_err("layer 2 of 2");
        assert!(
            err.to_string()
                .contains("model.layers.2.mlp.up_proj.weight"),
            "{err}"
        );
    }

    #[test]
    fn heads_a_classifier_does_not_use_are_expected_and_others_reported() {
        let names = [
            "bert.embeddings.position_ids",
            "cls.predictions.transform.dense.weight",
            "cls.seq_relationship.bias",
            "classifier.weight",
            "bert.encoder.layer.0.attention.self.query.weight",
            "bert.encoder.layer.0.attention.self.rotary.weight",
            "something.else",
        ];
        assert_eq!(
            bert_weights(&bert(1), &names),
            Ok(vec![
                "bert.encoder.layer.0.attention.self.rotary.weight".to_string(),
                "something.else".to_string()
            ])
        );
        let tied = llama(r#", "tie_word_embeddings": true"#);
        let names = [
            "lm_head.weight",
            "model.rotary_emb.inv_freq",
            "model.layers.0.self_attn.q_proj.bias",
        ];
        assert_eq!(
            llama_weights((&tied).into(), &names),
            Ok(vec!["model.layers.0.self_attn.q_proj.bias".to_string()])
        );
    }

    #[test]
    fn a_length_past_the_positions_names_the_setting_and_the_limit() {
        assert_eq!(check_length("max", 512, 512, "positions"), Ok(()));
        let err = check_length("train.max_length", 513, 512, "max_position_embeddings")
            .expect_err("one too many");
        let message = err.to_string();
        assert!(message.contains("train.max_length is 513"), "{message}");
        assert!(
            message.contains("max_position_embeddings (512)"),
            "{message}"
        );
        assert!(message.contains("at most 512"), "{message}");
    }
}
