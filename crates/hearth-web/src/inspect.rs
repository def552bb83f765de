//! The page's data report: a dataset file read in chunks, so that a large file never sits in
//! the module's memory, into the same report as `hearth inspect --json`.

use hearth_data::DataFormat;
use wasm_bindgen::prelude::*;

use crate::api::{format_of, js_error, to_json};

/// Settings of the page's data report: the planned run's split (for the leakage check) and
/// max length (for truncation).
#[derive(serde::Deserialize)]
struct InspectSettings {
    text_column: String,
    label_column: Option<String>,
    max_length: usize,
    eval_fraction: f64,
    seed: u64,
}

/// The data-quality report of a dataset file, built from chunks of the file so that a large
/// file never sits in the module's memory: `sniff` every chunk (pass 1, the encoding), `push`
/// every chunk again (pass 2, the rows), then `finish` for the report as JSON (the same report
/// as `hearth inspect --json`).
#[wasm_bindgen]
pub struct InspectStream {
    format: DataFormat,
    settings: InspectSettings,
    sniffer: Option<hearth_data::stream::EncodingSniffer>,
    stream: Option<hearth_data::stream::RowStream>,
    builder: hearth_data::quality::ReportBuilder<'static>,
}

#[wasm_bindgen]
impl InspectStream {
    /// A report of the file `file_name` (its extension gives the format) with the page's
    /// settings; `tokenizer` (bytes of `tokenizer.json`, or `undefined`) adds token figures.
    #[wasm_bindgen(constructor)]
    pub fn new(
        file_name: &str,
        settings_json: &str,
        tokenizer: Option<Vec<u8>>,
    ) -> Result<InspectStream, JsError> {
        let settings: InspectSettings = serde_json::from_str(settings_json).map_err(js_error)?;
        let counter = tokenizer
            .map(|t| hearth_models::tokenizer::TokenCounter::from_bytes(&t))
            .transpose()
            .map_err(js_error)?;
        let tokens = counter.map(|c| {
            Box::new(move |t: &str| c.count(t)) as hearth_data::quality::BoxedTokenCounter<'static>
        });
        let options = hearth_data::quality::InspectOptions {
            max_length: settings.max_length,
            ..Default::default()
        };
        Ok(Self {
            format: format_of(file_name)?,
            settings,
            sniffer: Some(hearth_data::stream::EncodingSniffer::new()),
            stream: None,
            builder: hearth_data::quality::ReportBuilder::new(options, tokens),
        })
    }

    /// Pass 1: the next chunk, for the encoding.
    pub fn sniff(&mut self, chunk: &[u8]) {
        if let Some(sniffer) = &mut self.sniffer {
            sniffer.push(chunk);
        }
    }

    /// Pass 2: the next chunk, for the rows.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        if let Some(sniffer) = self.sniffer.take() {
            self.stream = Some(hearth_data::stream::RowStream::new(
                self.format,
                sniffer.finish(),
                &self.settings.text_column,
                self.settings.label_column.as_deref(),
            ));
        }
        let (Some(stream), builder) = (&mut self.stream, &mut self.builder) else {
            return Err(js_error("push after finish"));
        };
        stream
            .push(chunk, &mut |t, l| builder.push(t, l))
            .map_err(js_error)
    }

    /// Rows read so far.
    pub fn rows(&self) -> usize {
        self.builder.rows()
    }

    /// The report, as JSON.
    pub fn finish(mut self) -> Result<String, JsError> {
        if self.stream.is_none() {
            self.push(&[])?;
        }
        let Some(stream) = self.stream.take() else {
            return Err(js_error("nothing was read"));
        };
        let mut builder = self.builder;
        let load = stream
            .finish(&mut |t, l| builder.push(t, l))
            .map_err(js_error)?;
        let holdout = hearth_data::quality::planned_holdout(
            builder.rows(),
            None,
            self.settings.eval_fraction,
            self.settings.seed,
        );
        let report = builder.finish(
            &load,
            holdout
                .as_ref()
                .map(|s| (s.train.as_slice(), s.eval.as_slice())),
        );
        to_json(&report)
    }
}

/// Settings of the page's chat data report: the planned run's split and max length.
#[derive(serde::Deserialize)]
struct ChatInspectSettings {
    max_length: usize,
    eval_fraction: f64,
    seed: u64,
}

/// The data report of a file of conversations (the SFT task), as JSON: the same report as
/// `hearth inspect --json`'s `chat`. The chat model's files by name (`names[i]` is the name
/// of `contents[i]`: a `.gguf` file, or `tokenizer.json` with `tokenizer_config.json` and
/// `chat_template.jinja`; none for a report without token figures) give the token figures
/// after its chat template. Conversations files are read whole.
#[wasm_bindgen(js_name = inspectChat)]
pub fn inspect_chat(
    file_name: &str,
    bytes: &[u8],
    settings_json: &str,
    names: Vec<String>,
    contents: js_sys::Array,
) -> Result<String, JsError> {
    let settings: ChatInspectSettings = serde_json::from_str(settings_json).map_err(js_error)?;
    let model = crate::run::named_files(names, &contents)?;
    let tokenizer = (!model.is_empty())
        .then(|| hearth_models::chat_model::tokenizer_from_named(&model))
        .transpose()
        .map_err(js_error)?;
    let data =
        hearth_data::chat::read_conversations(bytes, format_of(file_name)?).map_err(js_error)?;
    let max_length = settings.max_length;
    let measure = tokenizer.as_ref().map(|t| {
        move |turns: &[hearth_data::chat::Turn]| {
            hearth_train::sft::measure(t, turns, max_length).map_err(|e| e.to_string())
        }
    });
    let options = hearth_data::quality::InspectOptions {
        max_length,
        ..Default::default()
    };
    let holdout = hearth_data::quality::planned_holdout(
        data.rows.len(),
        None,
        settings.eval_fraction,
        settings.seed,
    );
    let report = hearth_data::quality::inspect_chat(
        &data,
        holdout
            .as_ref()
            .map(|s| (s.train.as_slice(), s.eval.as_slice())),
        &options,
        measure
            .as_ref()
            .map(|m| m as hearth_data::quality::ChatMeasure<'_>),
    );
    to_json(&report)
}
