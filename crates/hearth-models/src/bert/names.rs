//! The one name table of the BERT family: HuggingFace tensor names ↔ burn parameter paths.
//!
//! The structs of [`super`] mirror HF's submodules and carry their names, so a weight's burn
//! path is its HF name except where Rust cannot spell HF's segment (`LayerNorm`, `self`) and
//! where burn names a parameter otherwise (a LayerNorm's `weight`/`bias` are burn's
//! `gamma`/`beta`). [`NAME_TABLE`] lists exactly those differences, once, and is read in both
//! directions: loading a checkpoint ([`hf_to_burn`], through the store's key remapper), naming
//! LoRA targets and PEFT tensors ([`super::BertConfig::linear_modules`]), and writing a merged
//! or fully trained model ([`burn_to_hf`]). The tests below check that every path of a model
//! maps there and back.

/// `(HF, burn)`: runs of whole dot-separated segments that the two spell differently. At each
/// segment of a name the first row that matches is used, so longer runs come first.
pub const NAME_TABLE: &[(&str, &str)] = &[
    ("LayerNorm.weight", "layer_norm.gamma"),
    ("LayerNorm.bias", "layer_norm.beta"),
    // Checkpoints converted from TensorFlow name LayerNorm's parameters `gamma`/`beta` already.
    ("LayerNorm", "layer_norm"),
    ("attention.self", "attention.self_attention"),
];

/// The prefix a `BertForSequenceClassification` checkpoint puts before the encoder's tensors.
/// A plain `BertModel` (as sentence-transformers ships) has none; the encoder loads either.
pub const CHECKPOINT_PREFIX: &str = "bert.";

/// The burn path of an HF name (`encoder.layer.0.attention.self.query.weight` →
/// `encoder.layer.0.attention.self_attention.query.weight`). Prefixes are kept: the head's
/// `classifier.weight` and a classifier's `bert.` are spelled the same in both.
pub fn hf_to_burn(name: &str) -> String {
    rename(name, |(hf, burn)| (hf, burn))
}

/// The HF name of a burn path: the inverse of [`hf_to_burn`].
pub fn burn_to_hf(path: &str) -> String {
    rename(path, |(hf, burn)| (burn, hf))
}

/// The burn path, relative to the encoder, of a tensor of an HF checkpoint: the
/// [`CHECKPOINT_PREFIX`] dropped when present, then [`hf_to_burn`].
pub fn checkpoint_to_encoder(name: &str) -> String {
    hf_to_burn(name.strip_prefix(CHECKPOINT_PREFIX).unwrap_or(name))
}

/// Rewrites `name` segment by segment with the table's rows, read as `(from, to)` by `columns`.
fn rename(name: &str, columns: impl Fn((&'static str, &'static str)) -> (&str, &str)) -> String {
    let segments: Vec<&str> = name.split('.').collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let mut i = 0;
    'segments: while i < segments.len() {
        for &row in NAME_TABLE {
            let (from, to) = columns(row);
            let run: Vec<&str> = from.split('.').collect();
            if segments[i..].starts_with(&run) {
                out.push(to);
                i += run.len();
                continue 'segments;
            }
        }
        out.push(segments[i]);
        i += 1;
    }
    out.join(".")
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;
    use crate::bert::{BertConfig, BertForSequenceClassification, BertModel, Pooling};
    use crate::host::named_params;
    use crate::lora::LoraSettings;

    fn classifier() -> BertForSequenceClassification {
        let config = BertConfig::from_json(
            br#"{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 2,
                 "num_attention_heads": 2, "intermediate_size": 16,
                 "max_position_embeddings": 8}"#,
        )
        .expect("config");
        let device = Device::flex();
        let encoder = BertModel::init(&config, 0.0, &device).expect("encoder");
        BertForSequenceClassification::new(encoder, &config, 3, Pooling::Cls, &device)
            .expect("classifier")
    }

    #[test]
    fn every_path_maps_there_and_back() {
        let model = classifier();
        let adapted = classifier()
            .with_lora(&LoraSettings {
                target_modules: vec!["query".into(), "dense".into()],
                ..LoraSettings::default()
            })
            .expect("adapters");
        let mut paths: Vec<String> = named_params(&model).ids.into_keys().collect();
        paths.extend(named_params(&adapted).ids.into_keys());
        assert!(paths.iter().any(|p| p.contains(".lora.")));
        for path in &paths {
            let hf = burn_to_hf(path);
            assert_eq!(&hf_to_burn(&hf), path, "{path} → {hf}");
            assert_eq!(burn_to_hf(&hf_to_burn(&hf)), hf, "{hf}");
        }
        // The names transformers writes, for each kind of row.
        let hf: Vec<String> = paths.iter().map(|p| burn_to_hf(p)).collect();
        for name in [
            "bert.embeddings.LayerNorm.weight",
            "bert.encoder.layer.1.attention.output.LayerNorm.bias",
            "bert.encoder.layer.0.attention.self.query.weight",
            "bert.pooler.dense.bias",
            "classifier.weight",
        ] {
            assert!(hf.iter().any(|n| n == name), "{name} missing from {hf:?}");
        }
    }

    #[test]
    fn checkpoints_load_with_or_without_the_prefix() {
        assert_eq!(
            checkpoint_to_encoder("bert.encoder.layer.3.attention.self.key.bias"),
            "encoder.layer.3.attention.self_attention.key.bias"
        );
        assert_eq!(
            checkpoint_to_encoder("embeddings.LayerNorm.gamma"),
            "embeddings.layer_norm.gamma"
        );
        assert_eq!(
            checkpoint_to_encoder("encoder.layer.0.output.LayerNorm.weight"),
            "encoder.layer.0.output.layer_norm.gamma"
        );
        // A segment that merely contains a table entry is left alone.
        assert_eq!(hf_to_burn("selfish.LayerNorms"), "selfish.LayerNorms");
    }

    #[test]
    fn linear_modules_name_their_weights_through_the_table() {
        let config = BertConfig::from_json(
            br#"{"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 4,
                 "num_attention_heads": 2, "intermediate_size": 16,
                 "max_position_embeddings": 8}"#,
        )
        .expect("config");
        let modules = config.linear_modules(true);
        assert_eq!(modules.len(), 4 * 6 + 1);
        let query = &modules[6 * 3];
        assert_eq!(query.hf_name, "encoder.layer.3.attention.self.query");
        assert_eq!(
            query.weight_path,
            "encoder.layer.3.attention.self_attention.query.weight"
        );
        assert_eq!(
            modules[3].weight_path,
            "encoder.layer.0.attention.output.dense.weight"
        );
        assert_eq!((modules[4].d_in, modules[4].d_out), (8, 16));
        assert_eq!(modules[24].hf_name, "pooler.dense");
        assert_eq!(config.linear_modules(false).len(), 4 * 6);
    }
}
