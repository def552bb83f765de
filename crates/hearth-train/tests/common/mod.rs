//! Helpers of the tests that read PyTorch / scikit-learn fixtures from `tests/fixtures/`.
// Each test binary uses a part of this harness.
#![allow(dead_code, unused_imports)]

/// A committed fixture, parsed.
pub use hearth_fixtures::json as fixture;

/// A JSON array of numbers as f32.
pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}
