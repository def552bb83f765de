//! The optimizers, exactly as PyTorch's `torch.optim` computes them (SGD with momentum and
//! Nesterov, Adam, AdamW, RMSprop), with gradient clipping by norm or by value, and their
//! state kept by parameter path so that a checkpoint can carry it.
//!
//! burn's optimizers key their state by `ParamId` (fresh in every process) and serialize it
//! with blocking reads, which panic in a browser. These name each state tensor after the
//! parameter's module path (`bert.encoder.layer.0.attention.self_attention.query.weight.lora.a`)
//! and the slot PyTorch's `state_dict` uses (`exp_avg`, `exp_avg_sq`, `momentum_buffer`,
//! `square_avg`), and read state back with `into_data_async`, so a run saved in one process, or
//! in one tab, continues in another.
//!
//! Updates, per trainable parameter `p` with gradient `g` at step `t` (λ = weight decay):
//! - SGD: `g ← g + λp`; with momentum μ: `b ← g` (first step) or `b ← μb + g`, then `g ← g + μb`
//!   (Nesterov) or `g ← b`; `p ← p − lr·g`.
//! - Adam: `g ← g + λp`; `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`,
//!   `p ← p − lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε)`.
//! - AdamW: `p ← p·(1 − lr·λ)`, then Adam's update without the `λp` term.
//! - RMSprop: `g ← g + λp`; `s ← αs + (1 − α)g²`; `d = g/(√s + ε)`; with momentum μ:
//!   `b ← μb + d`, `p ← p − lr·b`, else `p ← p − lr·d`.
//!
//! Clipping happens first: by value clamps every gradient element to ±c; by norm scales all
//! gradients by `min(1, c / (‖g‖₂ + 1e-6))` over the global norm of every trainable gradient
//! (`torch.nn.utils.clip_grad_norm_`).

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// Which optimizer, with its own hyper-parameters (the learning rate and weight decay are the
/// job's `train.learning_rate` and `train.weight_decay`). Defaults are PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerSettings {
    /// Stochastic gradient descent.
    Sgd {
        /// Momentum μ (0: none).
        #[serde(default)]
        momentum: f64,
        /// Nesterov momentum.
        #[serde(default)]
        nesterov: bool,
    },
    /// Adam, with L2 weight decay added to the gradient.
    Adam(AdamSettings),
    /// AdamW: Adam with decoupled weight decay.
    #[serde(rename = "adamw")]
    AdamW(AdamSettings),
    /// RMSprop (not centered).
    #[serde(rename = "rmsprop")]
    RmsProp {
        /// Smoothing constant α.
        #[serde(default = "alpha")]
        alpha: f64,
        /// ε.
        #[serde(default = "eps")]
        eps: f64,
        /// Momentum μ (0: none).
        #[serde(default)]
        momentum: f64,
    },
}

fn beta1() -> f64 {
    0.9
}
fn beta2() -> f64 {
    0.999
}
fn eps() -> f64 {
    1e-8
}
fn alpha() -> f64 {
    0.99
}

/// The hyper-parameters Adam and AdamW share.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamSettings {
    /// β₁.
    #[serde(default = "beta1")]
    pub beta1: f64,
    /// β₂.
    #[serde(default = "beta2")]
    pub beta2: f64,
    /// ε.
    #[serde(default = "eps")]
    pub eps: f64,
}

impl Default for AdamSettings {
    fn default() -> Self {
        Self {
            beta1: beta1(),
            beta2: beta2(),
            eps: eps(),
        }
    }
}

impl Default for OptimizerSettings {
    fn default() -> Self {
        Self::AdamW(AdamSettings::default())
    }
}

impl OptimizerSettings {
    /// Checks the values, naming the setting to change.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |name: &str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "train.optimizer.{name} must be in [0, 1), found {v}"
                ))
            }
        };
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!(
                    "train.optimizer.{name} must be positive, found {v}"
                ))
            }
        };
        match *self {
            Self::Sgd { momentum, nesterov } => {
                unit("momentum", momentum)?;
                if nesterov && momentum == 0.0 {
                    return Err("train.optimizer.nesterov needs a momentum above 0".into());
                }
                Ok(())
            }
            Self::Adam(AdamSettings { beta1, beta2, eps })
            | Self::AdamW(AdamSettings { beta1, beta2, eps }) => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                positive("eps", eps)
            }
            Self::RmsProp {
                alpha,
                eps,
                momentum,
            } => {
                unit("alpha", alpha)?;
                unit("momentum", momentum)?;
                positive("eps", eps)
            }
        }
    }

    /// The state slots of one parameter, named as in PyTorch's `state_dict`.
    fn slots(&self) -> &'static [&'static str] {
        match *self {
            Self::Sgd { momentum, .. } if momentum > 0.0 => &["momentum_buffer"],
            Self::Sgd { .. } => &[],
            Self::Adam(_) | Self::AdamW(_) => &["exp_avg", "exp_avg_sq"],
            Self::RmsProp { momentum, .. } if momentum > 0.0 => &["square_avg", "momentum_buffer"],
            Self::RmsProp { .. } => &["square_avg"],
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Sgd { .. } => "sgd",
            Self::Adam(_) => "adam",
            Self::AdamW(_) => "adamw",
            Self::RmsProp { .. } => "rmsprop",
        }
    }
}

/// Gradient clipping, applied before the update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clipping {
    /// Scale all gradients so their global L2 norm is at most this.
    #[serde(default)]
    pub max_norm: Option<f64>,
    /// Clamp every gradient element to ±this.
    #[serde(default)]
    pub max_value: Option<f64>,
}

/// An optimizer with its state.
#[derive(Clone)]
pub struct Optimizer {
    settings: OptimizerSettings,
    weight_decay: f64,
    clipping: Clipping,
    /// Steps taken (PyTorch's per-parameter `step`; every trainable parameter receives a
    /// gradient every step here, so one counter serves all).
    steps: u64,
    /// Parameter path → its state slots, flattened, on the inner (non-autodiff) device.
    state: BTreeMap<String, Vec<Tensor<1>>>,
}

impl std::fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optimizer")
            .field("settings", &self.settings)
            .field("steps", &self.steps)
            .field("parameters", &self.state.len())
            .finish()
    }
}

/// Safetensors metadata keys.
const STEP_KEY: &str = "step";
const NAME_KEY: &str = "optimizer";

impl Optimizer {
    /// AdamW with PyTorch's defaults and weight decay `weight_decay`.
    pub fn new(weight_decay: f64) -> Self {
        Self::with(
            OptimizerSettings::default(),
            weight_decay,
            Clipping::default(),
        )
    }

    /// A fresh optimizer.
    pub fn with(settings: OptimizerSettings, weight_decay: f64, clipping: Clipping) -> Self {
        Self {
            settings,
            weight_decay,
            clipping,
            steps: 0,
            state: BTreeMap::new(),
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
        let scale = self
            .clipping
            .max_norm
            .and_then(|max| norm_scale(&module, &grads, max));
        let mut mapper = Mapper {
            path: Vec::new(),
            grads: &mut grads,
            state: &mut self.state,
            settings: self.settings,
            weight_decay: self.weight_decay,
            max_value: self.clipping.max_value,
            scale,
            lr,
            t: i32::try_from(self.steps).unwrap_or(i32::MAX),
        };
        module.map(&mut mapper)
    }

    /// The state as safetensors: `<path>.<slot>` in the parameter's flattened order, the step
    /// count and the optimizer's name in the metadata.
    pub async fn to_safetensors(&self) -> Result<Vec<u8>, TrainError> {
        let mut host: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let slots = self.settings.slots();
        for (path, tensors) in &self.state {
            for (suffix, tensor) in slots.iter().zip(tensors) {
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
        let metadata = HashMap::from([
            (STEP_KEY.to_string(), self.steps.to_string()),
            (NAME_KEY.to_string(), self.settings.name().to_string()),
        ]);
        safetensors::serialize(views, Some(metadata))
            .map_err(|e| TrainError::Checkpoint(e.to_string()))
    }

    /// Restores the state written by [`Optimizer::to_safetensors`] onto `device` (the inner,
    /// non-autodiff device the gradients live on).
    pub fn load_safetensors(&mut self, bytes: &[u8], device: &Device) -> Result<(), TrainError> {
        let bad = |msg: String| TrainError::Checkpoint(format!("optimizer state: {msg}"));
        let (_, header) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let steps = meta
            .get(STEP_KEY)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("the step count is missing".into()))?;
        let name = meta.get(NAME_KEY).map_or("adamw", String::as_str);
        if name != self.settings.name() {
            return Err(bad(format!(
                "it is {name}'s, the job uses {}",
                self.settings.name()
            )));
        }
        let slots = self.settings.slots();
        let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let mut found: BTreeMap<String, Vec<Option<Tensor<1>>>> = BTreeMap::new();
        for (name, view) in file.tensors() {
            if view.dtype() != Dtype::F32 || view.shape().len() != 1 {
                return Err(bad(format!("`{name}` is not a flat f32 tensor")));
            }
            let Some((path, slot)) = slots.iter().enumerate().find_map(|(k, slot)| {
                name.strip_suffix(&format!(".{slot}"))
                    .map(|p| (p.to_string(), k))
            }) else {
                return Err(bad(format!("unexpected tensor `{name}`")));
            };
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let n = values.len();
            let tensor = Tensor::<1>::from_data(TensorData::new(values, [n]), device);
            found.entry(path).or_insert_with(|| vec![None; slots.len()])[slot] = Some(tensor);
        }
        let mut state = BTreeMap::new();
        for (path, tensors) in found {
            let tensors: Option<Vec<Tensor<1>>> = tensors.into_iter().collect();
            match tensors {
                Some(t) => {
                    state.insert(path, t);
                }
                None => return Err(bad(format!("`{path}` lacks one of its state tensors"))),
            }
        }
        self.steps = steps;
        self.state = state;
        Ok(())
    }

    /// Checks that the state belongs to `module`: a moment for every trainable parameter, of its
    /// size, and none for anything else.
    pub fn check_matches<M: Module>(&self, module: &M) -> Result<(), TrainError> {
        let mut trainable = Trainable::default();
        module.visit(&mut trainable);
        let mut expected = trainable.sizes;
        if self.steps == 0 && self.state.is_empty() {
            return Ok(());
        }
        if self.settings.slots().is_empty() {
            // Plain SGD keeps no state to check.
            return Ok(());
        }
        for (path, tensors) in &self.state {
            let sizes: Vec<usize> = tensors.iter().map(|t| t.dims()[0]).collect();
            match expected.remove(path) {
                Some(n) if sizes.iter().all(|&s| s == n) => {}
                Some(n) => {
                    return Err(TrainError::Checkpoint(format!(
                        "optimizer state for `{path}` has {sizes:?} values, the parameter {n}"
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

/// The factor `min(1, max / (‖g‖₂ + 1e-6))` over every gradient of `module`, as a
/// one-element tensor on the gradients' device (no read back).
fn norm_scale<M: Module>(module: &M, grads: &GradientsParams, max: f64) -> Option<Tensor<1>> {
    struct Squares<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Squares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let n = g.shape().num_elements();
                let sq = g.reshape([n]).square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + sq,
                    None => sq,
                });
            }
        }
    }
    let mut squares = Squares { grads, total: None };
    module.visit(&mut squares);
    squares.total.map(|total| {
        let norm = total.sqrt().add_scalar(1e-6);
        norm.recip().mul_scalar(max).clamp_max(1.0)
    })
}

struct Mapper<'a> {
    path: Vec<String>,
    grads: &'a mut GradientsParams,
    state: &'a mut BTreeMap<String, Vec<Tensor<1>>>,
    settings: OptimizerSettings,
    weight_decay: f64,
    max_value: Option<f64>,
    scale: Option<Tensor<1>>,
    lr: f64,
    t: i32,
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

        let mut g = grad.reshape([n]);
        if let Some(c) = self.max_value {
            g = g.clamp(-c, c);
        }
        if let Some(scale) = &self.scale {
            g = g * scale.clone();
        }
        let mut p = tensor.inner().reshape([n]);
        let old = self.state.remove(&path);
        let (lr, wd) = (self.lr, self.weight_decay);
        let (new_p, state) = match self.settings {
            OptimizerSettings::Sgd { momentum, nesterov } => {
                if wd != 0.0 {
                    g = g + p.clone().mul_scalar(wd);
                }
                if momentum > 0.0 {
                    let buf = match old.and_then(|s| s.into_iter().next()) {
                        Some(b) => b.mul_scalar(momentum) + g.clone(),
                        None => g.clone(),
                    };
                    let d = if nesterov {
                        g + buf.clone().mul_scalar(momentum)
                    } else {
                        buf.clone()
                    };
                    (p - d.mul_scalar(lr), vec![buf])
                } else {
                    (p - g.mul_scalar(lr), Vec::new())
                }
            }
            OptimizerSettings::Adam(AdamSettings { beta1, beta2, eps })
            | OptimizerSettings::AdamW(AdamSettings { beta1, beta2, eps }) => {
                if matches!(self.settings, OptimizerSettings::AdamW(_)) {
                    p = p.mul_scalar(1.0 - lr * wd);
                } else if wd != 0.0 {
                    g = g + p.clone().mul_scalar(wd);
                }
                let mut old = old.unwrap_or_default().into_iter();
                let m = match old.next() {
                    Some(m) => m.mul_scalar(beta1) + g.clone().mul_scalar(1.0 - beta1),
                    None => g.clone().mul_scalar(1.0 - beta1),
                };
                let v = match old.next() {
                    Some(v) => v.mul_scalar(beta2) + g.square().mul_scalar(1.0 - beta2),
                    None => g.square().mul_scalar(1.0 - beta2),
                };
                let bias1 = 1.0 - beta1.powi(self.t);
                let bias2_sqrt = (1.0 - beta2.powi(self.t)).sqrt();
                let denom = v.clone().sqrt().div_scalar(bias2_sqrt).add_scalar(eps);
                let delta = (m.clone() / denom).mul_scalar(lr / bias1);
                (p - delta, vec![m, v])
            }
            OptimizerSettings::RmsProp {
                alpha,
                eps,
                momentum,
            } => {
                if wd != 0.0 {
                    g = g + p.clone().mul_scalar(wd);
                }
                let mut old = old.unwrap_or_default().into_iter();
                let sq = match old.next() {
                    Some(s) => s.mul_scalar(alpha) + g.clone().square().mul_scalar(1.0 - alpha),
                    None => g.clone().square().mul_scalar(1.0 - alpha),
                };
                let d = g / sq.clone().sqrt().add_scalar(eps);
                if momentum > 0.0 {
                    let buf = match old.next() {
                        Some(b) => b.mul_scalar(momentum) + d,
                        None => d,
                    };
                    (p - buf.clone().mul_scalar(lr), vec![sq, buf])
                } else {
                    (p - d.mul_scalar(lr), vec![sq])
                }
            }
        };
        if !state.is_empty() {
            self.state.insert(path, state);
        }

        let mut updated = Tensor::from_inner(new_p.reshape(dims));
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

    use super::Optimizer;

    #[derive(Module, Debug)]
    struct Net {
        a: Linear,
        b: Linear,
    }

    fn loss(net: &Net, x: Tensor<2>) -> Tensor<1> {
        net.b.forward(net.a.forward(x).tanh()).square().mean()
    }

    fn flat(net: &Net) -> Vec<f32> {
        let named = hearth_models::host::named_params(net);
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
        let mut opt = Optimizer::new(0.01);
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
                let mut again = Optimizer::new(0.01);
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
