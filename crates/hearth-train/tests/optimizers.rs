//! Every optimizer's first five steps equal PyTorch's on a fixed problem (fixture from
//! `scripts/fixtures/optimizers.py`): the same initial parameters and gradients, and the
//! parameters `torch.optim` left after each step, with clipping by norm and by value.

mod common;

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use common::{fixture, floats};
use hearth_train::optim::{Clipping, Optimizer, OptimizerSettings};

#[derive(Module, Debug)]
struct Pair {
    a: Param<Tensor<2>>,
    b: Param<Tensor<1>>,
}

fn read(t: Tensor<1>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

#[test]
fn optimizers_match_pytorch_step_by_step() {
    let fx = fixture("optimizers.json");
    let device = Device::flex().autodiff();
    let inner = device.clone().inner();
    let cases = fx["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 10);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let settings: OptimizerSettings =
            serde_json::from_value(case["optimizer"].clone()).expect("settings");
        let clipping = Clipping {
            max_norm: case["max_norm"].as_f64(),
            max_value: case["max_value"].as_f64(),
        };
        let mut opt = Optimizer::with(
            settings,
            case["weight_decay"].as_f64().expect("wd"),
            clipping,
        );
        let lr = case["lr"].as_f64().expect("lr");
        let mut pair = Pair {
            a: Param::from_tensor(
                Tensor::from_data(TensorData::new(floats(&fx["a0"]), [3, 4]), &device)
                    .require_grad(),
            ),
            b: Param::from_tensor(
                Tensor::from_data(TensorData::new(floats(&fx["b0"]), [4]), &device).require_grad(),
            ),
        };
        for (step, (grads, after)) in fx["grads"]
            .as_array()
            .expect("grads")
            .iter()
            .zip(case["after"].as_array().expect("after"))
            .enumerate()
        {
            let mut g = GradientsParams::new();
            g.register(
                pair.a.id,
                Tensor::<2>::from_data(TensorData::new(floats(&grads[0]), [3, 4]), &inner),
            );
            g.register(
                pair.b.id,
                Tensor::<1>::from_data(TensorData::new(floats(&grads[1]), [4]), &inner),
            );
            pair = opt.step(lr, pair, g);
            let ours: Vec<f32> = read(pair.a.val().reshape([12]))
                .into_iter()
                .chain(read(pair.b.val()))
                .collect();
            let theirs: Vec<f32> = floats(&after[0])
                .into_iter()
                .chain(floats(&after[1]))
                .collect();
            let worst = ours
                .iter()
                .zip(&theirs)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst < 2e-6,
                "{name}, step {}: largest difference {worst:e}\nours   {ours:?}\ntorch  {theirs:?}",
                step + 1
            );
        }
    }
}

#[test]
fn settings_parse_and_reject_nonsense() {
    let s: OptimizerSettings =
        serde_json::from_str(r#"{"name": "sgd", "momentum": 0.9}"#).expect("sgd");
    assert_eq!(
        s,
        OptimizerSettings::Sgd {
            momentum: 0.9,
            nesterov: false
        }
    );
    assert!(s.validate().is_ok());
    let bad: OptimizerSettings =
        serde_json::from_str(r#"{"name": "sgd", "nesterov": true}"#).expect("parses");
    assert!(bad.validate().unwrap_err().contains("momentum"));
    let bad: OptimizerSettings =
        serde_json::from_str(r#"{"name": "adam", "beta1": 1.5}"#).expect("parses");
    assert!(
        bad.validate()
            .unwrap_err()
            .contains("train.optimizer.beta1")
    );
    assert!(serde_json::from_str::<OptimizerSettings>(r#"{"name": "lion"}"#).is_err());
}
