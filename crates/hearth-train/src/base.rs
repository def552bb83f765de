//! The base model's files as the front ends hand them over: by name, read from a directory
//! natively or picked in the page, and turned into what each model family loads. A BERT
//! directory is `config.json`, `model.safetensors` and `tokenizer.json`; a chat model is one
//! `*.gguf` file or a HuggingFace directory (those three, with `tokenizer_config.json` and
//! `chat_template.jinja` when present).

use hearth_models::ModelFiles;
use hearth_models::chat_model::LmFiles;

use crate::TrainError;

/// Files by name (a file name, not a path), with their bytes.
pub type NamedFiles = Vec<(String, Vec<u8>)>;

/// The file names a model directory may hold, in the order a front end reads them; the first
/// three are required unless the model is one `.gguf` file.
pub const MODEL_DIR_FILES: [&str; 5] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
];

/// The bytes of the file named `name`, or an error naming it.
pub fn file<'a>(files: &'a NamedFiles, name: &str) -> Result<&'a [u8], TrainError> {
    files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, bytes)| bytes.as_slice())
        .ok_or_else(|| TrainError::Job(format!("{name} is missing")))
}

/// A BERT model directory's three files.
pub fn bert_files(mut files: NamedFiles) -> Result<ModelFiles, TrainError> {
    let mut take = |name: &str| {
        let i = files.iter().position(|(n, _)| n == name).ok_or_else(|| {
            TrainError::Job(format!(
                "a BERT-family model is a directory with config.json, model.safetensors and \
                 tokenizer.json: {name} is missing"
            ))
        })?;
        Ok::<_, TrainError>(files.swap_remove(i).1)
    };
    Ok(ModelFiles {
        config: take("config.json")?,
        weights: take("model.safetensors")?,
        tokenizer: take("tokenizer.json")?,
        adapter: None,
    })
}

/// A chat model's files: a `.gguf` file or a HuggingFace directory's.
pub fn lm_files(files: NamedFiles) -> Result<LmFiles, TrainError> {
    Ok(LmFiles::from_named(files)?)
}
