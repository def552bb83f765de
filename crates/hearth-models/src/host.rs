//! Tensors on the host, and the paths of a module's parameters: the one place where weights
//! leave the device, become safetensors bytes, and come back from them.
//!
//! Every writer in this crate (PEFT adapters, a classifier's head, merged and fully trained
//! models, a GGUF file's dequantized weights) goes through [`HostTensor`]: read back with
//! [`to_host`] (async, so it runs in a browser too), renamed and transposed as the target format
//! wants, and written with [`serialize`]. Every reader of a single tensor goes through
//! [`HostTensor::from_view`]; weights go back onto a module through [`load_pytorch`] (an HF
//! checkpoint) or [`load_host`] (tensors already named and laid out as burn's). The burn path of a parameter (`bert.encoder.layer.0.…`) is
//! tracked in one place too: [`PathVisitor`] and [`PathMapper`] see each parameter with its
//! path, and [`named_params`] is the visitor the other modules use to find parameters by path.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::store::{
    ApplyResult, FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot,
    PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::{DType, Tensor};
use safetensors::tensor::{Dtype, TensorView};

use crate::ModelError;

/// One tensor on the host, row-major f32.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// The dimensions, outermost first.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
}

impl HostTensor {
    /// The transpose of a matrix: burn's `[in, out]` becomes PyTorch's `[out, in]` and back.
    pub fn transposed(self) -> Self {
        let (rows, cols) = (self.shape[0], self.shape[1]);
        let mut data = vec![0.0; self.data.len()];
        for r in 0..rows {
            for c in 0..cols {
                data[c * rows + r] = self.data[r * cols + c];
            }
        }
        Self {
            shape: vec![cols, rows],
            data,
        }
    }

    /// A safetensors tensor read as f32; `None` when it is stored in another dtype (the
    /// caller names the tensor and the dtypes it accepts in its error).
    pub fn from_view(view: &TensorView<'_>) -> Option<Self> {
        (view.dtype() == Dtype::F32).then(|| Self {
            shape: view.shape().to_vec(),
            data: view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        })
    }

    fn bytes(&self) -> Vec<u8> {
        self.data.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

/// Refuses a safetensors file (`file` names it in the message) that holds NaN or an infinity
/// in any floating-point tensor (F64, F32, F16, BF16), naming the first such tensor; the
/// tensors are checked in name order. A file whose header cannot be read passes: reading it is
/// the loader's check, with its own message.
pub fn check_finite(bytes: &[u8], file: &str) -> Result<(), ModelError> {
    let Ok(tensors) = safetensors::SafeTensors::deserialize(bytes) else {
        return Ok(());
    };
    let mut views = tensors.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, view) in views {
        let data = view.data();
        // The index and value of the first element whose exponent bits are all ones.
        let found = match view.dtype() {
            Dtype::F64 => first_non_finite(data, 8, |b| {
                let x = f64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                (!x.is_finite()).then(|| x.to_string())
            }),
            Dtype::F32 => first_non_finite(data, 4, |b| {
                let x = f32::from_le_bytes(b.try_into().unwrap_or([0; 4]));
                (!x.is_finite()).then(|| x.to_string())
            }),
            Dtype::F16 => first_non_finite(data, 2, |b| half_value(b, 0x7C00, 0x03FF)),
            Dtype::BF16 => first_non_finite(data, 2, |b| half_value(b, 0x7F80, 0x007F)),
            _ => None,
        };
        if let Some((index, value)) = found {
            return Err(ModelError::NonFinite {
                file: file.to_string(),
                tensor: crate::error::quoted(&name),
                value,
                index,
            });
        }
    }
    Ok(())
}

/// The index and description of the first element of `data` (elements of `size` bytes) that
/// `describe` calls non-finite.
fn first_non_finite(
    data: &[u8],
    size: usize,
    describe: impl Fn(&[u8]) -> Option<String>,
) -> Option<(usize, String)> {
    data.chunks_exact(size)
        .enumerate()
        .find_map(|(i, b)| describe(b).map(|v| (i, v)))
}

/// A 16-bit float's non-finite value (`NaN`, `inf`, `-inf`), from its little-endian bytes and
/// its format's exponent and mantissa masks.
fn half_value(b: &[u8], exponent: u16, mantissa: u16) -> Option<String> {
    let bits = u16::from_le_bytes([b[0], b[1]]);
    if bits & exponent != exponent {
        return None;
    }
    Some(if bits & mantissa != 0 {
        "NaN".into()
    } else if bits & 0x8000 != 0 {
        "-inf".into()
    } else {
        "inf".into()
    })
}

/// Reads a tensor back from its device. Async, so that it also works on WebGPU in a browser.
pub async fn to_host<const D: usize>(tensor: Tensor<D>) -> Result<HostTensor, ModelError> {
    let shape = tensor.dims().to_vec();
    let data = tensor
        .into_data_async()
        .await
        .map_err(|e| ModelError::Lora(format!("reading a tensor back failed: {e:?}")))?;
    let data = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| ModelError::Lora(format!("reading a tensor back failed: {e:?}")))?;
    Ok(HostTensor { shape, data })
}

/// Every tensor of a safetensors file by name, as f32 (F32, F16 and BF16 read; another dtype
/// is an error naming the tensor).
pub fn read_f32_tensors(bytes: &[u8]) -> Result<BTreeMap<String, HostTensor>, ModelError> {
    let file = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| ModelError::Weights(format!("model.safetensors: {e}")))?;
    let mut out = BTreeMap::new();
    for (name, view) in file.tensors() {
        let half =
            |f: fn([u8; 2]) -> f32| view.data().chunks_exact(2).map(move |b| f([b[0], b[1]]));
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => half(|b| burn::tensor::f16::from_le_bytes(b).to_f32()).collect(),
            Dtype::BF16 => half(|b| burn::tensor::bf16::from_le_bytes(b).to_f32()).collect(),
            other => {
                return Err(ModelError::Weights(format!(
                    "model.safetensors: tensor {name} is {other:?}; F32, F16 or BF16 expected"
                )));
            }
        };
        let shape = view.shape().to_vec();
        out.insert(name, HostTensor { shape, data });
    }
    Ok(out)
}

/// The bytes of a safetensors file holding `tensors` by name, all f32.
pub fn serialize(
    tensors: &BTreeMap<String, HostTensor>,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, ModelError> {
    let bytes: BTreeMap<&String, Vec<u8>> = tensors.iter().map(|(k, t)| (k, t.bytes())).collect();
    let views = tensors
        .iter()
        .map(|(name, t)| {
            TensorView::new(Dtype::F32, t.shape.clone(), &bytes[name])
                .map(|view| (name.clone(), view))
                .map_err(|e| ModelError::Lora(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, metadata).map_err(|e| ModelError::Lora(e.to_string()))
}

/// The metadata PyTorch's safetensors writer puts in a file, and PEFT and transformers expect.
pub fn pytorch_metadata() -> Option<HashMap<String, String>> {
    Some(HashMap::from([("format".to_string(), "pt".to_string())]))
}

/// `model.safetensors` of a model without adapters: every parameter under the HF name `to_hf`
/// gives its burn path, matrices transposed to PyTorch's `[out, in]` except the embedding
/// tables (`is_embedding`), which both store as `[vocab, hidden]`.
pub async fn pytorch_safetensors<M: Module>(
    model: &M,
    to_hf: impl Fn(&str) -> String,
    is_embedding: impl Fn(&str) -> bool,
) -> Result<Vec<u8>, ModelError> {
    let named = named_params(model);
    let mut tensors = BTreeMap::new();
    for (path, t) in named.matrices {
        let host = to_host(t).await?;
        let host = if is_embedding(&path) {
            host
        } else {
            host.transposed()
        };
        tensors.insert(to_hf(&path), host);
    }
    for (path, t) in named.vectors {
        tensors.insert(to_hf(&path), to_host(t).await?);
    }
    if tensors.keys().any(|k| k.contains(".lora.")) {
        return Err(ModelError::Lora(
            "the model still carries adapters (merge them first); nothing was written".into(),
        ));
    }
    serialize(&tensors, pytorch_metadata())
}

/// Loads an HF checkpoint (`model.safetensors` in PyTorch's layout) onto `module`: tensor
/// names renamed by `remapper`, linear weights transposed, LayerNorm's `weight`/`bias` read
/// as burn's `gamma`/`beta`, half precision cast to f32. Tensors the module lacks and
/// parameters the file lacks are reported in the result, not refused: the caller decides
/// ([`crate::error::check_loaded`]).
pub fn load_pytorch<M: ModuleSnapshot>(
    module: &mut M,
    bytes: Vec<u8>,
    remapper: KeyRemapper,
) -> Result<ApplyResult, ModelError> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .remap(remapper)
        .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)))
        .validate(false)
        .allow_partial(true);
    module
        .load_from(&mut store)
        .map_err(|e| ModelError::Weights(e.to_string()))
}

/// Loads `tensors`, named by burn path and in burn's layout, onto `module` through burn's
/// store, which keeps each parameter's id and whether it trains. The error is the store's
/// message; the caller says which file it was.
pub fn load_host<M: ModuleSnapshot>(
    module: &mut M,
    tensors: &BTreeMap<String, HostTensor>,
) -> Result<ApplyResult, String> {
    let bytes = serialize(tensors, None).map_err(|e| e.to_string())?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .validate(false)
        .allow_partial(true);
    module.load_from(&mut store).map_err(|e| e.to_string())
}

/// A visitor that sees every float parameter with its burn path (`bert.encoder.layer.0.…`).
/// Run it with [`visit_paths`].
pub trait PathVisitor {
    /// Called once per float parameter, in module order.
    fn visit<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>);
}

/// A mapper that rewrites every float parameter knowing its burn path. Run it with
/// [`map_paths`].
pub trait PathMapper {
    /// Called once per float parameter, in module order; returns its replacement.
    fn map<const D: usize>(&mut self, path: &str, param: Param<Tensor<D>>) -> Param<Tensor<D>>;
}

/// Keeps the path of the module being visited or mapped: the one place burn's
/// `enter_module`/`exit_module` calls are turned into a dotted path.
struct WithPath<T> {
    path: Vec<String>,
    inner: T,
}

impl<T> WithPath<T> {
    fn new(inner: T) -> Self {
        Self {
            path: Vec::new(),
            inner,
        }
    }
}

impl<V: PathVisitor> ModuleVisitor for WithPath<V> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.inner.visit(&self.path.join("."), param);
    }
}

impl<V: PathMapper> ModuleMapper for WithPath<V> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.inner.map(&self.path.join("."), param)
    }
}

/// Runs `visitor` over every float parameter of `module` with its path; returns the visitor.
pub fn visit_paths<M: Module, V: PathVisitor>(module: &M, visitor: V) -> V {
    let mut with_path = WithPath::new(visitor);
    module.visit(&mut with_path);
    with_path.inner
}

/// Runs `mapper` over every float parameter of `module` with its path.
pub fn map_paths<M: Module, P: PathMapper>(module: M, mapper: P) -> M {
    module.map(&mut WithPath::new(mapper))
}

/// The float parameters of a module by burn path (adapter factors included), as live tensors:
/// on an autodiff device they are the leaves gradients attach to.
#[derive(Default)]
pub struct NamedParams {
    /// Rank-2 parameters.
    pub matrices: BTreeMap<String, Tensor<2>>,
    /// Rank-1 parameters.
    pub vectors: BTreeMap<String, Tensor<1>>,
    /// The id of every parameter, the key of its gradient in `GradientsParams`.
    pub ids: BTreeMap<String, ParamId>,
}

impl PathVisitor for NamedParams {
    fn visit<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>) {
        self.ids.insert(path.to_string(), param.id);
        // `D` is the rank already: re-typing the same tensor copies nothing, where a reshape
        // would make a quantized base's zero-stride placeholders dense (crate::quant).
        let value = param.base().into_dispatch();
        match D {
            2 => {
                self.matrices
                    .insert(path.to_string(), Tensor::from_dispatch(value));
            }
            1 => {
                self.vectors
                    .insert(path.to_string(), Tensor::from_dispatch(value));
            }
            _ => {}
        }
    }
}

/// Every float parameter of `module` by burn path.
pub fn named_params<M: Module>(module: &M) -> NamedParams {
    visit_paths(module, NamedParams::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tensor_survives_safetensors_and_transposes_back() {
        let t = HostTensor {
            shape: vec![2, 3],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        let twice = t.clone().transposed();
        assert_eq!(twice.shape, [3, 2]);
        assert_eq!(twice.data, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(twice.transposed(), t);
        let bytes =
            serialize(&BTreeMap::from([("w".to_string(), t.clone())]), None).expect("serializes");
        let file = safetensors::SafeTensors::deserialize(&bytes).expect("reads");
        let back = HostTensor::from_view(&file.tensor("w").expect("has w")).expect("f32");
        assert_eq!(back, t);
    }

    #[test]
    fn a_non_finite_value_is_named_with_its_tensor() {
        let t = |data: Vec<f32>| HostTensor {
            shape: vec![data.len()],
            data,
        };
        let file = |tensors: Vec<(&str, HostTensor)>| {
            let map = tensors
                .into_iter()
                .map(|(n, t)| (n.to_string(), t))
                .collect();
            serialize(&map, None).expect("serializes")
        };
        let fine = file(vec![("a", t(vec![1.0, -2.0, f32::MAX]))]);
        assert!(check_finite(&fine, "x.safetensors").is_ok());
        for (bad, shown) in [
            (f32::NAN, "NaN"),
            (f32::INFINITY, "inf"),
            (f32::NEG_INFINITY, "-inf"),
        ] {
            let bytes = file(vec![
                ("a.lora_A.weight", t(vec![0.5; 4])),
                ("b.lora_B.weight", t(vec![0.0, 1.0, bad])),
            ]);
            let err = check_finite(&bytes, "adapter_model.safetensors").expect_err("non-finite");
            let message = err.to_string();
            assert!(
                message.starts_with("adapter_model.safetensors: tensor \"b.lora_B.weight\""),
                "{message}"
            );
            assert!(
                message.contains(&format!("holds {shown} at index 2")),
                "{message}"
            );
        }
        // Half precision: F16 NaN (0x7E00) and BF16 -inf (0xFF80).
        for (dtype, bits, shown) in [
            (Dtype::F16, 0x7E00u16, "NaN"),
            (Dtype::BF16, 0xFF80, "-inf"),
        ] {
            let raw: Vec<u8> = [0x3C00u16, bits]
                .iter()
                .flat_map(|b| b.to_le_bytes())
                .collect();
            let view = TensorView::new(dtype, vec![2], &raw).expect("view");
            let bytes = safetensors::serialize([("h", view)], None).expect("serializes");
            let err = check_finite(&bytes, "model.safetensors").expect_err("non-finite half");
            assert!(
                err.to_string()
                    .contains(&format!("holds {shown} at index 1")),
                "{err}"
            );
        }
        // Not a safetensors file: left to the loader.
        assert!(check_finite(b"garbage", "x").is_ok());
    }
}
