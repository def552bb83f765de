//! AdamW exactly as PyTorch's `torch.optim.AdamW` computes it, with its state kept by parameter
//! path so that a checkpoint can carry it.
//!
//! burn's optimizers key their state by `ParamId` (fresh in every process) and serialize it
//! with blocking reads, which panic in a browser. This one names each moment after the
//! parameter's module path (`bert.encoder.layer.0.attention.self_attention.query.weight.lora.a`)
//! and reads state back with `into_data_async`, so a run saved in one process, or in one tab,
//! continues in another.
//!
//! Update, per trainable parameter `p` with gradient `g`, step `t`:
//! `p ← p·(1 − lr·λ)`, `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`,
//! `p ← p − lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε)`.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::tensor::{Dtype, TensorView};

use crate::TrainError;

/// First and second moments of one parameter, flattened, on the inner (non-autodiff) device.
#[derive(Clone)]
struct Moments {
    exp_avg: Tensor<1>,
    exp_avg_sq: Tensor<1>,
}

/// AdamW with PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8) and a chosen weight decay.
#[derive(Clone)]
pub struct AdamW {
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    weight_decay: f64,
    /// Optimizer steps taken (PyTorch's per-parameter `step`; every trainable parameter
    /// receives a gradient every step here, so one counter serves all).
    steps: u64,
    moments: BTreeMap<String, Moments>,
}

impl std::fmt::Debug for AdamW {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdamW")
            .field("steps", &self.steps)
            .field("weight_decay", &self.weight_decay)
            .field("parameters", &self.moments.len())
            .finish()
    }
}

/// Name suffixes of the state tensors, as PyTorch's `state_dict` names them.
const EXP_AVG: &str = "exp_avg";
const EXP_AVG_SQ: &str = "exp_avg_sq";
/// Safetensors metadata key holding the step count.
const STEP_KEY: &str = "step";

impl AdamW {
    /// A fresh optimizer.
    pub fn new(weight_decay: f64) -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay,
            steps: 0,
            moments: BTreeMap::new(),
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Applies one update with learning rate `lr` to every parameter of `module` that has a
    /// gradient in `grads`; the others are returned untouched.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, mut grads: GradientsParams) -> M {
        self.steps += 1;
        let t = self.steps as i32;
        let mut mapper = Mapper {
            path: Vec::new(),
            grads: &mut grads,
            moments: &mut self.moments,
            lr,
            beta1: self.beta1,
            beta2: self.beta2,
            epsilon: self.epsilon,
            decay: 1.0 - lr * self.weight_decay,
            bias1: 1.0 - self.beta1.powi(t),
            bias2_sqrt: (1.0 - self.beta2.powi(t)).sqrt(),
        };
        module.map(&mut mapper)
    }

    /// The state as safetensors: `<path>.exp_avg` and `<path>.exp_avg_sq` in the parameter's
    /// flattened order, the step count in the metadata.
    pub async fn to_safetensors(&self) -> Result<Vec<u8>, TrainError> {
        let mut host: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (path, m) in &self.moments {
            for (suffix, tensor) in [(EXP_AVG, &m.exp_avg), (EXP_AVG_SQ, &m.exp_avg_sq)] {
                let data = tensor
                    .clone()
                    .into_data_async()
                    .await
                    .map_err(|e| TrainError::Device(format!("{e:?}")))?
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| TrainError::Device(format!("{e:?}")))?;
                let bytes = data.iter().flat_map(|x| x.to_le_bytes()).collect();
                host.insert(format!("{path}.{suffix}"), bytes);
            }
        }
        let views = host
            .iter()
            .map(|(name, bytes)| {
                TensorView::new(Dtype::F32, vec![bytes.len() / 4], bytes)
                    .map(|view| (name.clone(), view))
                    .map_err(|e| TrainError::Checkpoint(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metadata = HashMap::from([(STEP_KEY.to_string(), self.steps.to_string())]);
        safetensors::serialize(views, Some(metadata))
            .map_err(|e| TrainError::Checkpoint(e.to_string()))
    }

    /// Restores the state written by [`AdamW::to_safetensors`] onto `device` (the inner,
    /// non-autodiff device the gradients live on).
    pub fn load_safetensors(&mut self, bytes: &[u8], device: &Device) -> Result<(), TrainError> {
        let bad = |msg: String| TrainError::Checkpoint(format!("optimizer state: {msg}"));
        let (_, header) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let steps = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(STEP_KEY))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("the step count is missing".into()))?;
        let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let mut halves: BTreeMap<String, (Option<Tensor<1>>, Option<Tensor<1>>)> = BTreeMap::new();
        for (name, view) in file.tensors() {
            if view.dtype() != Dtype::F32 || view.shape().len() != 1 {
                return Err(bad(format!("`{name}` is not a flat f32 tensor")));
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let n = values.len();
            let tensor = Tensor::<1>::from_data(TensorData::new(values, [n]), device);
            let (path, slot) = if let Some(p) = name.strip_suffix(&format!(".{EXP_AVG_SQ}")) {
                (p, 1)
            } else if let Some(p) = name.strip_suffix(&format!(".{EXP_AVG}")) {
                (p, 0)
            } else {
                return Err(bad(format!("unexpected tensor `{name}`")));
            };
            let entry = halves.entry(path.to_string()).or_default();
            if slot == 0 {
                entry.0 = Some(tensor);
            } else {
                entry.1 = Some(tensor);
            }
        }
        let mut moments = BTreeMap::new();
        for (path, pair) in halves {
            match pair {
                (Some(exp_avg), Some(exp_avg_sq)) => {
                    moments.insert(
                        path,
                        Moments {
                            exp_avg,
                            exp_avg_sq,
                        },
                    );
                }
                _ => return Err(bad(format!("`{path}` lacks one of its two moments"))),
            }
        }
        self.steps = steps;
        self.moments = moments;
        Ok(())
    }

    /// Checks that the state belongs to `module`: a moment for every trainable parameter, of its
    /// size, and none for anything else.
    pub fn check_matches<M: Module>(&self, module: &M) -> Result<(), TrainError> {
        let mut trainable = Trainable::default();
        module.visit(&mut trainable);
        let mut expected = trainable.sizes;
        if self.steps == 0 && self.moments.is_empty() {
            return Ok(());
        }
        for (path, m) in &self.moments {
            match expected.remove(path) {
                Some(n) if n == m.exp_avg.dims()[0] && n == m.exp_avg_sq.dims()[0] => {}
                Some(n) => {
                    return Err(TrainError::Checkpoint(format!(
                        "optimizer state for `{path}` has {} values, the parameter {n}",
                        m.exp_avg.dims()[0]
                    )));
                }
                None => {
                    return Err(TrainError::Checkpoint(format!(
                        "optimizer state for `{path}`, which the model does not train"
                    )));
                }
            }
        }
        if let Some(path) = expected.keys().next() {
            return Err(TrainError::Checkpoint(format!(
                "no optimizer state for the trained parameter `{path}`"
            )));
        }
        Ok(())
    }
}

/// Sizes of the parameters that take gradients, by path.
#[derive(Default)]
struct Trainable {
    path: Vec<String>,
    sizes: BTreeMap<String, usize>,
}

impl ModuleVisitor for Trainable {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if param.base().is_require_grad() {
            self.sizes
                .insert(self.path.join("."), param.lazy_shape().num_elements());
        }
    }
}

struct Mapper<'a> {
    path: Vec<String>,
    grads: &'a mut GradientsParams,
    moments: &'a mut BTreeMap<String, Moments>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    epsilon: f64,
    decay: f64,
    bias1: f64,
    bias2_sqrt: f64,
}

impl ModuleMapper for Mapper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let path = self.path.join(".");
        let dims = tensor.dims();
        let n = tensor.shape().num_elements();
        let require_grad = tensor.is_require_grad();
        let checkpointing = tensor.gradient_checkpointing_strategy();

        let g = grad.reshape([n]);
        let moments = match self.moments.remove(&path) {
            Some(m) => Moments {
                exp_avg: m.exp_avg.mul_scalar(self.beta1) + g.clone().mul_scalar(1.0 - self.beta1),
                exp_avg_sq: m.exp_avg_sq.mul_scalar(self.beta2)
                    + g.clone().square().mul_scalar(1.0 - self.beta2),
            },
            None => Moments {
                exp_avg: g.clone().mul_scalar(1.0 - self.beta1),
                exp_avg_sq: g.square().mul_scalar(1.0 - self.beta2),
            },
        };
        let denom = moments
            .exp_avg_sq
            .clone()
            .sqrt()
            .div_scalar(self.bias2_sqrt)
            .add_scalar(self.epsilon);
        let delta = (moments.exp_avg.clone() / denom).mul_scalar(self.lr / self.bias1);
        let p = tensor.inner().reshape([n]).mul_scalar(self.decay) - delta;
        self.moments.insert(path, moments);

        let mut updated = Tensor::from_inner(p.reshape(dims));
        if let Some(strategy) = checkpointing {
            updated = updated.with_gradient_checkpointing_strategy(strategy);
        }
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamWConfig, GradientsParams};
    use burn::tensor::{Device, Distribution, Tensor};

    use super::AdamW;

    #[derive(Module, Debug)]
    struct Net {
        a: Linear,
        b: Linear,
    }

    fn loss(net: &Net, x: Tensor<2>) -> Tensor<1> {
        net.b.forward(net.a.forward(x).tanh()).square().mean()
    }

    fn flat(net: &Net) -> Vec<f32> {
        let named = hearth_models::peft::named_params(net);
        let matrices = named.matrices.values().map(|t| t.clone().into_data());
        let vectors = named.vectors.values().map(|t| t.clone().into_data());
        matrices
            .chain(vectors)
            .flat_map(|d| d.convert::<f32>().try_to_vec::<f32>().unwrap_or_default())
            .collect()
    }

    /// Five steps with weight decay give the same parameters as burn's AdamW (the same update
    /// as PyTorch's), and the state survives a save and load midway.
    #[test]
    fn matches_burn_adamw_and_resumes_exactly() {
        let device = Device::flex().autodiff();
        device.seed(1);
        let net = Net {
            a: LinearConfig::new(6, 5).init(&device),
            b: LinearConfig::new(5, 2).init(&device),
        };
        let x = Tensor::<2>::random([8, 6], Distribution::Normal(0.0, 1.0), &device);
        let (mut ours, mut theirs) = (net.clone(), net);
        let mut opt = AdamW::new(0.01);
        let mut reference = AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(0.01)
            .init();
        for step in 0..5 {
            let lr = 0.05 / (step + 1) as f64;
            let g = GradientsParams::from_grads(loss(&ours, x.clone()).backward(), &ours);
            ours = opt.step(lr, ours, g);
            let g = GradientsParams::from_grads(loss(&theirs, x.clone()).backward(), &theirs);
            theirs = reference.step(lr, theirs, g);
            if step == 2 {
                let bytes = pollster::block_on(opt.to_safetensors()).expect("saves");
                let mut again = AdamW::new(0.01);
                again
                    .load_safetensors(&bytes, &device.clone().inner())
                    .expect("loads");
                again.check_matches(&ours).expect("fits the model");
                assert_eq!(again.steps(), 3);
                opt = again;
            }
        }
        let (a, b) = (flat(&ours), flat(&theirs));
        assert_eq!(a.len(), 6 * 5 + 5 + 5 * 2 + 2);
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-6, "max difference {diff}");
        let moved = a
            .iter()
            .zip(
                flat(&Net {
                    a: LinearConfig::new(6, 5).init(&device),
                    b: LinearConfig::new(5, 2).init(&device),
                })
                .iter(),
            )
            .any(|(x, y)| x != y);
        assert!(moved);
    }
}
