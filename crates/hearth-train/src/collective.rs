//! Data-parallel training across processes: what the loop needs from a group of ranks that
//! train one job together, and the two things it does with the model through it.
//!
//! A run in one process uses [`Single`], where every operation is a no-op. A front end that
//! runs several processes (the CLI under `mpirun` or `srun`, with its `mpi` feature) hands the
//! run its own implementation; this crate stays free of MPI and of any backend.
//!
//! The scheme is mlx-lm's and PyTorch DDP's: every rank holds the same model and computes the
//! same seeded order of training rows; each micro-batch of `train.batch_size` rows (the global
//! batch) is shared out, rank r taking rows r, r + N, …; after local accumulation the trainable
//! gradients are summed across ranks in one fused buffer and divided by N, so every rank applies
//! the same update (and gradient clipping sees the global norm). Held-out rows are shared out
//! the same way and their per-row results summed, so every rank computes the same metrics and
//! makes the same early-stopping decision.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};

use crate::TrainError;

/// The processes one run trains in. Every rank calls every operation in the same order with
/// buffers of the same length; an implementation that fails returns
/// [`TrainError::Collective`] (the front end then ends the whole job).
pub trait Collective {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Replaces `values` with their element-wise sum over the ranks.
    fn sum_f32(&self, values: &mut [f32]) -> Result<(), TrainError>;
    /// Replaces `values` with their element-wise sum over the ranks.
    fn sum_f64(&self, values: &mut [f64]) -> Result<(), TrainError>;
    /// Replaces `bytes` on every rank with rank 0's.
    fn broadcast(&self, bytes: &mut Vec<u8>) -> Result<(), TrainError>;

    /// Whether `flag` holds on any rank (every rank gets the same answer).
    fn any(&self, flag: bool) -> Result<bool, TrainError> {
        if self.size() == 1 {
            return Ok(flag);
        }
        let mut v = [f64::from(u8::from(flag))];
        self.sum_f64(&mut v)?;
        Ok(v[0] > 0.0)
    }

    /// Whether this is the rank that writes files and prints (rank 0).
    fn is_leader(&self) -> bool {
        self.rank() == 0
    }
}

/// One process: nothing to share.
#[derive(Debug, Clone, Copy, Default)]
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f32(&self, _: &mut [f32]) -> Result<(), TrainError> {
        Ok(())
    }
    fn sum_f64(&self, _: &mut [f64]) -> Result<(), TrainError> {
        Ok(())
    }
    fn broadcast(&self, _: &mut Vec<u8>) -> Result<(), TrainError> {
        Ok(())
    }
}

/// The positions in `0..n` this rank takes: `rank, rank + size, …`.
pub fn shard(n: usize, collective: &dyn Collective) -> impl Iterator<Item = usize> {
    (collective.rank()..n).step_by(collective.size().max(1))
}

/// The trainable parameters (those that require a gradient) of a module, in visiting order,
/// each flattened.
struct Trainable {
    params: Vec<(ParamId, Tensor<1>)>,
}

impl ModuleVisitor for Trainable {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val();
        if value.is_require_grad() {
            let n = value.shape().num_elements();
            self.params.push((param.id, value.inner().reshape([n])));
        }
    }
}

async fn to_host(tensors: Vec<Tensor<1>>) -> Result<Vec<f32>, TrainError> {
    if tensors.is_empty() {
        return Ok(Vec::new());
    }
    // One read back for the whole model, not one per tensor.
    crate::trainer::read_f32(Tensor::cat(tensors, 0)).await
}

/// Gives every rank rank 0's trainable weights, so that all start from one model whatever
/// each built (a seeded init, a checkpoint or an initial adapter read on rank 0's node).
pub(crate) async fn broadcast_trainable<M: Module>(
    model: M,
    collective: &dyn Collective,
) -> Result<M, TrainError> {
    if collective.size() == 1 {
        return Ok(model);
    }
    let mut trainable = Trainable { params: Vec::new() };
    model.visit(&mut trainable);
    let values = to_host(trainable.params.into_iter().map(|(_, t)| t).collect()).await?;
    let mut bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    collective.broadcast(&mut bytes)?;
    if bytes.len() != values.len() * 4 {
        return Err(TrainError::Collective(format!(
            "rank 0 has {} trainable values, rank {} has {}: the ranks built different models",
            bytes.len() / 4,
            collective.rank(),
            values.len()
        )));
    }
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mut setter = SetTrainable { values, at: 0 };
    Ok(model.map(&mut setter))
}

struct SetTrainable {
    values: Vec<f32>,
    at: usize,
}

impl ModuleMapper for SetTrainable {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        if !tensor.is_require_grad() {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let dims = tensor.dims();
        let n = tensor.shape().num_elements();
        let slice = self.values[self.at..self.at + n].to_vec();
        self.at += n;
        let checkpointing = tensor.gradient_checkpointing_strategy();
        let inner = tensor.inner();
        let mut value = Tensor::from_inner(Tensor::<D>::from_data(
            TensorData::new(slice, dims),
            &inner.device(),
        ));
        if let Some(strategy) = checkpointing {
            value = value.with_gradient_checkpointing_strategy(strategy);
        }
        Param::from_mapped_value(id, value.require_grad(), mapper)
    }
}

/// Sums the trainable gradients over the ranks in one buffer and divides by their number:
/// every rank then holds the mean gradient of the global batch.
pub(crate) async fn mean_gradients<M: Module>(
    model: &M,
    mut grads: GradientsParams,
    collective: &dyn Collective,
) -> Result<GradientsParams, TrainError> {
    if collective.size() == 1 {
        return Ok(grads);
    }
    struct Found<'a> {
        grads: &'a GradientsParams,
        found: Vec<(ParamId, Vec<usize>, Tensor<1>)>,
    }
    impl ModuleVisitor for Found<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let dims = g.dims().to_vec();
                let n = g.shape().num_elements();
                self.found.push((param.id, dims, g.reshape([n])));
            }
        }
    }
    let mut found = Found {
        grads: &grads,
        found: Vec::new(),
    };
    model.visit(&mut found);
    let found = found.found;
    let Some(device) = found.first().map(|(_, _, g)| g.device()) else {
        return Ok(grads);
    };
    let layout: Vec<(ParamId, Vec<usize>)> = found
        .iter()
        .map(|(id, dims, _)| (*id, dims.clone()))
        .collect();
    let mut values = to_host(found.into_iter().map(|(_, _, g)| g).collect()).await?;
    let mut check = [values.len() as f64];
    collective.sum_f64(&mut check)?;
    if check[0] != (values.len() * collective.size()) as f64 {
        return Err(TrainError::Collective(
            "the ranks have gradients of different sizes: they train different models".into(),
        ));
    }
    collective.sum_f32(&mut values)?;
    let n = collective.size() as f32;
    values.iter_mut().for_each(|v| *v /= n);
    let mut at = 0;
    for (id, dims) in layout {
        let len: usize = dims.iter().product();
        let slice = values[at..at + len].to_vec();
        at += len;
        register(&mut grads, id, slice, &dims, &device);
    }
    Ok(grads)
}

fn register(
    grads: &mut GradientsParams,
    id: ParamId,
    values: Vec<f32>,
    dims: &[usize],
    device: &burn::tensor::Device,
) {
    fn put<const D: usize>(
        grads: &mut GradientsParams,
        id: ParamId,
        values: Vec<f32>,
        dims: &[usize],
        device: &burn::tensor::Device,
    ) {
        let shape: [usize; D] = std::array::from_fn(|i| dims[i]);
        grads.register::<D>(
            id,
            Tensor::<D>::from_data(TensorData::new(values, shape), device),
        );
    }
    match dims.len() {
        1 => put::<1>(grads, id, values, dims, device),
        2 => put::<2>(grads, id, values, dims, device),
        3 => put::<3>(grads, id, values, dims, device),
        _ => put::<4>(grads, id, values, dims, device),
    }
}
