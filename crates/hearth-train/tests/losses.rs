//! Cross-entropy with and without label smoothing and class weights: the loss and its gradient
//! equal PyTorch's (fixture from `scripts/make_loss_fixtures.py`).

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::{fixture, floats};
use hearth_train::loss::{ClassWeights, cross_entropy};

#[test]
fn cross_entropy_matches_pytorch() {
    let fx = fixture("losses.json");
    let targets: Vec<usize> = fx["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|v| v.as_u64().expect("int") as usize)
        .collect();
    let device = Device::flex().autodiff();
    for case in fx["cases"].as_array().expect("cases") {
        let logits =
            Tensor::<2>::from_data(TensorData::new(floats(&fx["logits"]), [6, 3]), &device)
                .require_grad();
        let weights: Option<Vec<f64>> = case["weights"]
            .as_array()
            .map(|w| w.iter().map(|x| x.as_f64().expect("weight")).collect());
        let smoothing = case["smoothing"].as_f64().expect("smoothing");
        let loss = cross_entropy(logits.clone(), &targets, weights.as_deref(), smoothing);
        let value = loss
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32")[0];
        let want = case["loss"].as_f64().expect("loss") as f32;
        assert!(
            (value - want).abs() < 1e-6,
            "{case}: loss {value} vs {want}"
        );
        let grads = loss.backward();
        let grad = logits
            .grad(&grads)
            .expect("a gradient")
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32");
        let worst = grad
            .iter()
            .zip(floats(&case["grad"]))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-6, "{case}: gradient differs by {worst}");
    }
}

#[test]
fn balanced_weights_are_scikit_learn_s() {
    // compute_class_weight("balanced", classes=[0, 1, 2], y=[0, 0, 0, 1, 2, 2]) = [2/3, 2, 1].
    let w = serde_json::from_str::<ClassWeights>("\"balanced\"")
        .expect("parses")
        .resolve(&[0, 0, 0, 1, 2, 2], 3)
        .expect("weights");
    assert_eq!(w, vec![6.0 / 9.0, 2.0, 1.0]);
    let err = ClassWeights::Explicit(vec![1.0])
        .resolve(&[0, 1], 2)
        .unwrap_err();
    assert!(err.contains("1 weights for 2 classes"), "{err}");
}
