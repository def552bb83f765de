//! What the fixture examples share: fixed, visibly non-zero factors.

use std::collections::HashMap;

/// The adapter with every `lora_B` set to `0.05·sin(i + 1)` and a classifier head's weight (if
/// any) to `0.5·cos(i)`, so that both move the logits visibly; the rest as it was.
pub fn with_nonzero_b(bytes: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let file = safetensors::SafeTensors::deserialize(bytes)?;
    let mut owned = Vec::new();
    for (name, view) in file.tensors() {
        let n = view.data().len() / 4;
        let data: Vec<u8> = if name.contains("lora_B") {
            (0..n)
                .flat_map(|i| (0.05 * ((i + 1) as f32).sin()).to_le_bytes())
                .collect()
        } else if name.ends_with("classifier.weight") {
            (0..n)
                .flat_map(|i| (0.5 * (i as f32).cos()).to_le_bytes())
                .collect()
        } else {
            view.data().to_vec()
        };
        owned.push((name, view.shape().to_vec(), data));
    }
    let views = owned
        .iter()
        .map(|(n, s, d)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                .map(|v| (n.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(safetensors::serialize(
        views,
        Some(HashMap::from([("format".into(), "pt".into())])),
    )?)
}
