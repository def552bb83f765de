//! A job before it is typed: the tree of a job file (or an empty one), patched setting by setting
//! (the CLI's flags each name one setting), then parsed once into a [`JobSpec`].
//!
//! Defaults are not written here: they are the serde defaults of the job types. This module adds
//! only what a tree of settings needs beyond serde: a tagged section (`task`, `train.optimizer`)
//! set to another kind drops the old kind's settings, a setting that only some kinds take is
//! refused with the kinds that do take it, and an SFT job without `lora.target_modules` adapts
//! the decoder's projections ([`LoraSettings::for_decoder`]) instead of BERT's.

use hearth_models::lora::LoraSettings;
use serde_json::{Map, Value};

use super::JobSpec;
use crate::TrainError;

/// The tagged sections of a job: where they are, their tag, and the kind when the tag is absent.
const TAGGED: &[(&str, &str, &str)] = &[
    ("task", "kind", "classification"),
    ("train.optimizer", "name", "adamw"),
];

/// Settings that only some kinds of a tagged section take: section, setting, kinds.
const KIND_SETTINGS: &[(&str, &str, &[&str])] = &[
    ("task", "separator", &["multi_label"]),
    ("task", "threshold", &["multi_label"]),
    ("task", "loss", &["regression"]),
    ("task", "huber_delta", &["regression"]),
    ("task", "packing", &["sft"]),
    ("task", "chat_template", &["sft"]),
    ("task", "truncation", &["sft"]),
    ("train.optimizer", "momentum", &["sgd", "rmsprop"]),
    ("train.optimizer", "nesterov", &["sgd"]),
    ("train.optimizer", "beta1", &["adam", "adamw"]),
    ("train.optimizer", "beta2", &["adam", "adamw"]),
    ("train.optimizer", "eps", &["adam", "adamw", "rmsprop"]),
    ("train.optimizer", "alpha", &["rmsprop"]),
];

/// A job as a tree of settings, not yet parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawJob(Value);

impl RawJob {
    /// A job with no setting given: every setting takes its default once parsed (the model and
    /// data paths have none and must be set).
    pub fn empty() -> Self {
        Self(Value::Object(Map::new()))
    }

    /// A job file's settings: JSON when the text starts with `{`, TOML otherwise.
    pub fn from_text(text: &str) -> Result<Self, TrainError> {
        let tree: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| TrainError::Job(e.to_string()))?
        } else {
            toml::from_str(text).map_err(|e| TrainError::Job(e.to_string()))?
        };
        if !tree.is_object() {
            return Err(TrainError::Job("a job is a table of settings".into()));
        }
        Ok(Self(tree))
    }

    /// The setting at a dotted path (`train.learning_rate`), when the tree has it.
    pub fn get(&self, path: &str) -> Option<&Value> {
        path.split('.').try_fold(&self.0, |node, key| node.get(key))
    }

    /// Sets the setting at a dotted path, creating the sections on the way. Setting a tag
    /// (`task.kind`, `train.optimizer.name`) to another kind than the section's drops the
    /// section's other settings, which belonged to the old kind.
    pub fn set(&mut self, path: &str, value: Value) -> &mut Self {
        let (section, key) = path.rsplit_once('.').unwrap_or(("", path));
        if let Some(&(_, tag, default)) = TAGGED.iter().find(|(s, t, _)| *s == section && *t == key)
        {
            let current = self.get(path).and_then(Value::as_str).unwrap_or(default);
            if value.as_str() != Some(current) {
                *self.section_mut(section) = Map::new();
            }
            self.section_mut(section).insert(tag.into(), value);
            return self;
        }
        self.section_mut(section).insert(key.into(), value);
        self
    }

    /// The table at a dotted path, created (or replacing a value that is not a table) if needed.
    fn section_mut(&mut self, path: &str) -> &mut Map<String, Value> {
        let mut node = &mut self.0;
        for key in path.split('.').filter(|k| !k.is_empty()) {
            node = table(node)
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()));
        }
        table(node)
    }

    /// The kind of a tagged section: its tag, or the default kind.
    fn kind(&self, section: &str) -> &str {
        let (_, tag, default) = TAGGED
            .iter()
            .find(|(s, _, _)| *s == section)
            .copied()
            .unwrap_or(("", "", ""));
        self.get(&format!("{section}.{tag}"))
            .and_then(Value::as_str)
            .unwrap_or(default)
    }

    /// Parses the settings once into a job (serde fills every default) and validates it.
    pub fn parse(mut self) -> Result<JobSpec, TrainError> {
        for &(section, setting, kinds) in KIND_SETTINGS {
            let path = format!("{section}.{setting}");
            let kind = self.kind(section);
            if self.get(&path).is_some() && !kinds.contains(&kind) {
                let tag = TAGGED
                    .iter()
                    .find(|(s, _, _)| *s == section)
                    .map_or("kind", |t| t.1);
                return Err(TrainError::Job(format!(
                    "{path} applies to {section}.{tag} = {} only; this job's {section}.{tag} is \
                     {kind}",
                    kinds.join(" or ")
                )));
            }
        }
        if self.kind("task") == "sft" && self.get("lora.target_modules").is_none() {
            let targets = LoraSettings::for_decoder().target_modules;
            self.set("lora.target_modules", Value::from(targets));
        }
        let job: JobSpec =
            serde_json::from_value(self.0).map_err(|e| TrainError::Job(e.to_string()))?;
        job.validate()?;
        Ok(job)
    }
}

/// `node` as a table, replacing it with an empty one if it is not.
fn table(node: &mut Value) -> &mut Map<String, Value> {
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    node.as_object_mut().expect("made a table above")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> RawJob {
        let mut raw = RawJob::empty();
        raw.set("model.path", json!("m"))
            .set("data.path", json!("d"));
        raw
    }

    #[test]
    fn an_empty_job_takes_the_types_defaults() {
        let job = minimal().parse().expect("parses");
        assert_eq!(job.train, crate::TrainSettings::default());
        assert_eq!(job.lora, LoraSettings::default());
        assert_eq!(job.data.text_column, "text");
    }

    #[test]
    fn another_kind_drops_the_old_kinds_settings_and_the_same_kind_keeps_them() {
        let mut raw = RawJob::from_text(
            "[model]\npath='m'\n[data]\npath='d'\n[task]\nkind='multi_label'\nseparator=','\n",
        )
        .expect("toml");
        raw.set("task.kind", json!("multi_label"));
        assert_eq!(raw.get("task.separator"), Some(&json!(",")));
        raw.set("task.kind", json!("regression"))
            .set("task.loss", json!("mae"));
        assert!(raw.get("task.separator").is_none());
        let job = raw.parse().expect("parses");
        assert_eq!(
            job.task,
            crate::Task::Regression {
                loss: crate::RegressionLoss::Mae,
                huber_delta: 1.0
            }
        );
    }

    #[test]
    fn a_setting_of_another_kind_is_named_with_the_kinds_that_take_it() {
        let mut raw = minimal();
        raw.set("task.loss", json!("mae"));
        let err = raw
            .parse()
            .expect_err("classification has no loss")
            .to_string();
        assert!(
            err.contains("task.loss applies to task.kind = regression only"),
            "{err}"
        );
        let mut raw = minimal();
        raw.set("train.optimizer.momentum", json!(0.9));
        let err = raw.parse().expect_err("adamw has no momentum").to_string();
        assert!(err.contains("sgd or rmsprop"), "{err}");
    }

    /// The table of kind-specific settings agrees with the types: each setting parses for the
    /// kinds listed and is refused by serde for every other kind.
    #[test]
    fn kind_settings_match_the_types() {
        let samples = [
            json!(0.5),
            json!(true),
            json!("mse"),
            json!("|"),
            json!("drop"),
        ];
        let mut kinds_of: Vec<(&str, Vec<&str>)> = TAGGED
            .iter()
            .map(|(s, _, default)| (*s, vec![*default]))
            .collect();
        for (section, _, kinds) in KIND_SETTINGS {
            let known = &mut kinds_of
                .iter_mut()
                .find(|(s, _)| s == section)
                .expect("tagged")
                .1;
            for k in *kinds {
                if !known.contains(k) {
                    known.push(k);
                }
            }
        }
        let parses = |section: &str, body: Value| match section {
            "task" => serde_json::from_value::<crate::Task>(body).is_ok(),
            _ => serde_json::from_value::<crate::optim::OptimizerSettings>(body).is_ok(),
        };
        for &(section, setting, kinds) in KIND_SETTINGS {
            let tag = TAGGED.iter().find(|t| t.0 == section).expect("tagged").1;
            let known = &kinds_of
                .iter()
                .find(|(s, _)| *s == section)
                .expect("kinds")
                .1;
            for kind in known {
                let any = samples
                    .iter()
                    .any(|v| parses(section, json!({ tag: kind, setting: v })));
                // serde ignores extra fields beside a unit variant's tag (`classification`):
                // there the table is the only check.
                let lax = parses(section, json!({ tag: kind, "no_such_setting": 1 }));
                if !lax || kinds.contains(kind) {
                    assert_eq!(any, kinds.contains(kind), "{section}.{setting} for {kind}");
                }
            }
        }
    }

    #[test]
    fn an_sft_job_adapts_the_decoders_projections_unless_told_otherwise() {
        let mut raw = minimal();
        raw.set("task.kind", json!("sft"));
        let job = raw.clone().parse().expect("parses");
        assert_eq!(job.lora.target_modules, ["q_proj", "v_proj"]);
        raw.set("lora.target_modules", json!(["k_proj"]));
        assert_eq!(raw.parse().expect("parses").lora.target_modules, ["k_proj"]);
    }
}
