//! Any bytes, in any format, as conversations: reading them for the chat data report and the
//! report itself (roles, answers, duplicates, conflicts, personal data, leakage, the token
//! figures under each truncation policy) end in a report or an error, never a panic.
#![no_main]

use hearth_data::DataFormat;
use hearth_data::chat::{Cut, Turn};
use hearth_data::quality::{ChatFit, InspectOptions, inspect_chat};
use libfuzzer_sys::fuzz_target;

const FORMATS: [DataFormat; 5] = [
    DataFormat::Csv,
    DataFormat::Tsv,
    DataFormat::Jsonl,
    DataFormat::Json,
    DataFormat::Text,
];

const CUTS: [Cut; 4] = [Cut::Whole, Cut::PromptCut, Cut::AnswerCut, Cut::Dropped];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(selector) % FORMATS.len()];
    let Ok(conversations) = hearth_data::chat::read_conversations(bytes, format) else {
        return;
    };
    let n = conversations.rows.len();
    // A split with out-of-range rows too, as a caller's mistake would give.
    let train: Vec<usize> = (0..n + 2).step_by(2).collect();
    let eval: Vec<usize> = (1..n + 2).step_by(2).collect();
    // A stand-in measure: a length from the turns' bytes, cuts from it, and a refusal now and
    // then, as a chat template may refuse a conversation.
    let measure = |turns: &[Turn]| -> Result<ChatFit, String> {
        let length: usize = turns.iter().map(|t| t.content.len() + t.role.len()).sum();
        if length % 7 == 3 {
            return Err("the template refuses".into());
        }
        Ok(ChatFit {
            length,
            cuts: [0, 1, 2].map(|k| CUTS[(length + k) % CUTS.len()]),
        })
    };
    let options = InspectOptions {
        max_length: usize::from(selector >> 3) + 1,
        examples: usize::from(selector & 7),
        ..InspectOptions::default()
    };
    let split = (selector & 0x40 != 0).then_some((train.as_slice(), eval.as_slice()));
    let measure = (selector & 0x80 != 0).then_some(&measure as hearth_data::quality::ChatMeasure<'_>);
    let report = inspect_chat(&conversations, split, &options, measure);
    assert_eq!(report.rows, n);
    assert!(report.conversations <= n);
});
