//! Any job text and any model config: parsing the job (TOML or JSON), validating it and
//! checking it against a model (`max_length` against the positions, the weights' tensor names
//! against the config's layers, non-finite values) end in a value or an error, never a panic.
//!
//! The input is three parts split at the first two NUL bytes: the job's text, the model's
//! `config.json`, and the names of the tensors of its `model.safetensors` (one per line; a
//! name's first byte picks the one value it holds, NaN and the infinities among them). The
//! same bytes are also tried as the weights file itself.
#![no_main]

use std::collections::BTreeMap;

use hearth_models::ModelFiles;
use hearth_models::host::{HostTensor, check_finite, serialize};
use hearth_train::adapter::{check_chat_files, check_classifier_model};
use hearth_train::{JobSpec, Task};
use libfuzzer_sys::fuzz_target;

const VALUES: [f32; 5] = [0.0, 1.5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let job_text = parts.next().unwrap_or_default();
    let config = parts.next().unwrap_or_default().to_vec();
    let names = parts.next().unwrap_or_default();

    // The job as a job file gives it; when it is no job, a default one whose max length
    // comes from the input, so the model check still runs.
    let parsed = std::str::from_utf8(job_text)
        .ok()
        .and_then(|text| JobSpec::parse(text).ok());
    let job = match parsed {
        Some(job) => {
            let _ = job.validate();
            let _ = JobSpec::parse(&job.to_json());
            job
        }
        None => {
            let Ok(mut job) = JobSpec::default_for(Task::Classification, "m", "d.csv") else {
                return;
            };
            let length = job_text.iter().take(4).fold(0usize, |n, &b| n << 8 | usize::from(b));
            job.train.max_length = length;
            job
        }
    };

    // A weights file holding the named tensors, one value each.
    let tensors: BTreeMap<String, HostTensor> = names
        .split(|&b| b == b'\n')
        .filter(|n| !n.is_empty())
        .take(64)
        .map(|n| {
            let value = VALUES[usize::from(n[0]) % VALUES.len()];
            let tensor = HostTensor {
                shape: vec![1],
                data: vec![value],
            };
            (String::from_utf8_lossy(n).into_owned(), tensor)
        })
        .collect();
    let built = serialize(&tensors, None).unwrap_or_default();
    for weights in [built, names.to_vec()] {
        let _ = check_finite(&weights, "model.safetensors");
        let files = ModelFiles {
            config: config.clone(),
            weights: weights.clone(),
            ..ModelFiles::default()
        };
        let _ = check_classifier_model(&job, &files, "train.max_length");
        let named = vec![
            ("config.json".to_string(), config.clone()),
            ("model.safetensors".to_string(), weights),
        ];
        let _ = check_chat_files(&named);
    }
});
