//! Cross-entropy with and without label smoothing and class weights: the loss and its gradient
//! equal PyTorch's (fixture from `scripts/fixtures/losses.py`).

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::{fixture, floats};
use hearth_train::RegressionLoss;
use hearth_train::loss::{
    ClassWeights, bce_with_logits, cross_entropy, l1_penalty, regression_loss,
};

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

fn value_of(loss: &Tensor<1>) -> f32 {
    loss.clone()
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")[0]
}

fn grad_of<const D: usize>(x: &Tensor<D>, loss: Tensor<1>) -> Vec<f32> {
    let grads = loss.backward();
    x.grad(&grads)
        .expect("a gradient")
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn binary_cross_entropy_matches_pytorch() {
    let fx = &fixture("losses.json")["multi_label"];
    let device = Device::flex().autodiff();
    let logits = Tensor::<2>::from_data(TensorData::new(floats(&fx["logits"]), [5, 4]), &device)
        .require_grad();
    let loss = bce_with_logits(logits.clone(), &floats(&fx["targets"]));
    let want = fx["loss"].as_f64().expect("loss") as f32;
    assert!(
        (value_of(&loss) - want).abs() < 1e-6,
        "{} vs {want}",
        value_of(&loss)
    );
    let d = worst(&grad_of(&logits, loss), &floats(&fx["grad"]));
    assert!(d < 1e-6, "gradient differs by {d}");
}

#[test]
fn regression_losses_match_pytorch() {
    let fx = &fixture("losses.json")["regression"];
    let device = Device::flex().autodiff();
    let targets = floats(&fx["targets"]);
    for case in fx["cases"].as_array().expect("cases") {
        let loss_kind: RegressionLoss =
            serde_json::from_value(case["loss_name"].clone()).expect("loss name");
        let delta = case["delta"].as_f64().expect("delta");
        let x = Tensor::<1>::from_data(TensorData::new(floats(&fx["predictions"]), [7]), &device)
            .require_grad();
        let loss = regression_loss(x.clone(), &targets, loss_kind, delta);
        let want = case["loss"].as_f64().expect("loss") as f32;
        assert!(
            (value_of(&loss) - want).abs() < 1e-6,
            "{case}: {} vs {want}",
            value_of(&loss)
        );
        let d = worst(&grad_of(&x, loss), &floats(&case["grad"]));
        assert!(d < 1e-6, "{case}: gradient differs by {d}");
    }
}

#[test]
fn l1_penalty_is_l1_times_the_absolute_sum() {
    let device = Device::flex().autodiff();
    let w = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, -2.0, 0.5, -0.25], [2, 2]),
        &device,
    )
    .require_grad();
    let penalty = l1_penalty(std::slice::from_ref(&w), 0.1).expect("a penalty");
    assert!((value_of(&penalty) - 0.375).abs() < 1e-7);
    // d/dw of 0.1·Σ|w| = 0.1·sign(w).
    assert_eq!(grad_of(&w, penalty), vec![0.1, -0.1, 0.1, -0.1]);
}
