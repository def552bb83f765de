//! Any text: personal-data search and redaction, encoding repair, folding and the
//! near-duplicate search never panic, and findings lie on character boundaries.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let found = hearth_data::pii::find_pii(text);
    for m in &found {
        assert!(m.start < m.end && m.end <= text.len());
        assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
    }
    let _ = hearth_data::pii::redact_pii(text);
    let _ = hearth_data::mojibake::repair(text);
    let _ = hearth_data::mojibake::is_damaged(text);
    let lines: Vec<&str> = text.lines().collect();
    let _ = hearth_data::neardup::fold(text);
    let _ = hearth_data::neardup::near_duplicate_groups(&lines, &Default::default());
});
