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

    /// How many ranks train a model in this process's memory: 1, or every rank for replicas
    /// on threads ([`ThreadGroup`]). The memory plan counts what each holds of its own.
    fn models_in_memory(&self) -> usize {
        1
    }

    /// Where replicas in one process share the model they build ([`ModelSlot`]); none for
    /// ranks in separate processes.
    fn model_slot(&self) -> Option<&ModelSlot> {
        None
    }
}

/// A model built by one replica and cloned by the others of its [`ThreadGroup`]: a clone
/// shares the tensors, so the frozen base is one copy in memory whatever the number of
/// replicas (what each replica trains becomes its own at its first update).
#[derive(Default)]
pub struct ModelSlot(std::sync::Mutex<Option<(Box<dyn std::any::Any + Send>, usize)>>);

impl std::fmt::Debug for ModelSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ModelSlot")
    }
}

impl ModelSlot {
    /// `build()` on the first replica that asks; a clone of that model for each of the
    /// `others` that ask after it (they wait while it is built), after which the slot is empty.
    /// If the build fails, the next replica builds for itself.
    pub fn build_once<T: Clone + Send + 'static>(
        &self,
        others: usize,
        build: impl FnOnce() -> Result<T, TrainError>,
    ) -> Result<T, TrainError> {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((model, left)) = slot.as_mut()
            && let Some(model) = model.downcast_ref::<T>()
        {
            let model = model.clone();
            *left -= 1;
            if *left == 0 {
                *slot = None;
            }
            return Ok(model);
        }
        let model = build()?;
        if others > 0 {
            *slot = Some((Box::new(model.clone()), others));
        }
        Ok(model)
    }
}

/// `build()`, or, for replicas on threads, one replica's build cloned by the others
/// ([`ModelSlot`]).
pub(crate) fn built_once<T: Clone + Send + 'static>(
    collective: &dyn Collective,
    build: impl FnOnce() -> Result<T, TrainError>,
) -> Result<T, TrainError> {
    match collective.model_slot() {
        Some(slot) => slot.build_once(collective.models_in_memory().saturating_sub(1), build),
        None => build(),
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

/// Ranks that are threads of one process: replicas of the model, each training its share of
/// every micro-batch on its own thread, exchanging through memory. On a CPU backend whose
/// element-wise kernels run on one thread, replicas keep every core busy through a whole
/// step, where one model only spreads its matrix products.
///
/// Every rank calls every operation in the same order (as over MPI); a rank that fails calls
/// [`ThreadGroup::abort`] (or drops its [`ThreadRank`] unfinished), which ends the operations
/// the others wait in with an error instead of leaving them waiting forever.
#[derive(Debug)]
pub struct ThreadGroup {
    size: usize,
    state: std::sync::Mutex<GroupState>,
    turn: std::sync::Condvar,
    model: ModelSlot,
}

#[derive(Debug, Default)]
struct GroupState {
    /// Ranks waiting at the current barrier, and how many barriers were passed.
    arrived: usize,
    generation: u64,
    /// Why the group ended early, once a rank failed.
    failed: Option<String>,
    f32s: Vec<Vec<f32>>,
    f64s: Vec<Vec<f64>>,
    bytes: Vec<u8>,
}

impl ThreadGroup {
    /// A group of `size` ranks (at least 1).
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        Self {
            size,
            state: std::sync::Mutex::new(GroupState {
                f32s: vec![Vec::new(); size],
                f64s: vec![Vec::new(); size],
                ..GroupState::default()
            }),
            turn: std::sync::Condvar::new(),
            model: ModelSlot::default(),
        }
    }

    /// Rank `rank`'s end of the group. Dropped before [`ThreadRank::finish`], it ends the
    /// group (the rank failed or panicked).
    pub fn rank(&self, rank: usize) -> ThreadRank<'_> {
        ThreadRank {
            group: self,
            rank,
            finished: false,
        }
    }

    /// Ends the group: every operation waiting now or later fails with `why`.
    pub fn abort(&self, why: &str) {
        let mut state = self.lock();
        if state.failed.is_none() {
            state.failed = Some(why.to_string());
        }
        self.turn.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GroupState> {
        // A rank that panicked holding the lock leaves the data as valid as before (every
        // write is a whole assignment); the panic itself ends the group through its drop.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn failed(why: &str) -> TrainError {
        TrainError::Collective(format!("another replica stopped: {why}"))
    }

    /// Waits until every rank has arrived.
    fn barrier(&self) -> Result<(), TrainError> {
        let mut state = self.lock();
        if let Some(why) = &state.failed {
            return Err(Self::failed(why));
        }
        state.arrived += 1;
        if state.arrived == self.size {
            state.arrived = 0;
            state.generation += 1;
            self.turn.notify_all();
            return Ok(());
        }
        let generation = state.generation;
        while state.generation == generation && state.failed.is_none() {
            state = self
                .turn
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        match &state.failed {
            Some(why) if state.generation == generation => Err(Self::failed(why)),
            _ => Ok(()),
        }
    }
}

/// One rank of a [`ThreadGroup`].
#[derive(Debug)]
pub struct ThreadRank<'a> {
    group: &'a ThreadGroup,
    rank: usize,
    finished: bool,
}

impl ThreadRank<'_> {
    /// Marks this rank's run as ended normally: dropping it no longer ends the group.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for ThreadRank<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.group
                .abort(&format!("replica {} ended with an error", self.rank));
        }
    }
}

/// Sums the ranks' slots in rank order, so every rank gets the same bits.
fn sum_slots<T: Copy + std::ops::AddAssign>(slots: &[Vec<T>], out: &mut [T]) -> bool {
    if slots.iter().any(|s| s.len() != out.len()) {
        return false;
    }
    out.copy_from_slice(&slots[0]);
    for slot in &slots[1..] {
        for (o, v) in out.iter_mut().zip(slot) {
            *o += *v;
        }
    }
    true
}

impl ThreadRank<'_> {
    fn sum<T: Copy + std::ops::AddAssign>(
        &self,
        values: &mut [T],
        slots: fn(&mut GroupState) -> &mut Vec<Vec<T>>,
    ) -> Result<(), TrainError> {
        if self.group.size == 1 {
            return Ok(());
        }
        slots(&mut self.group.lock())[self.rank] = values.to_vec();
        self.group.barrier()?;
        let same = sum_slots(slots(&mut self.group.lock()), values);
        // Nobody writes the slots again before every rank has read them.
        self.group.barrier()?;
        if same {
            Ok(())
        } else {
            Err(TrainError::Collective(
                "the replicas summed buffers of different lengths".into(),
            ))
        }
    }
}

impl Collective for ThreadRank<'_> {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.group.size
    }
    fn models_in_memory(&self) -> usize {
        self.group.size
    }
    fn model_slot(&self) -> Option<&ModelSlot> {
        Some(&self.group.model)
    }
    fn sum_f32(&self, values: &mut [f32]) -> Result<(), TrainError> {
        self.sum(values, |s| &mut s.f32s)
    }
    fn sum_f64(&self, values: &mut [f64]) -> Result<(), TrainError> {
        self.sum(values, |s| &mut s.f64s)
    }
    fn broadcast(&self, bytes: &mut Vec<u8>) -> Result<(), TrainError> {
        if self.group.size == 1 {
            return Ok(());
        }
        if self.rank == 0 {
            self.group.lock().bytes.clone_from(bytes);
        }
        self.group.barrier()?;
        if self.rank != 0 {
            bytes.clone_from(&self.group.lock().bytes);
        }
        self.group.barrier()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn thread_ranks_sum_and_broadcast_alike() {
        let group = ThreadGroup::new(3);
        let results: Vec<(Vec<f32>, Vec<u8>, bool)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|r| {
                    let group = &group;
                    s.spawn(move || {
                        let rank = group.rank(r);
                        let mut v = vec![r as f32, 1.0, 0.1 * r as f32];
                        rank.sum_f32(&mut v).unwrap();
                        let mut b = if r == 0 { vec![7, 8, 9] } else { vec![] };
                        rank.broadcast(&mut b).unwrap();
                        let any = rank.any(r == 2).unwrap();
                        rank.finish();
                        (v, b, any)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (v, b, any) in &results {
            assert_eq!(v, &results[0].0, "every rank holds the same bits");
            assert_eq!(v[..2], [3.0, 3.0]);
            assert_eq!(b, &[7, 8, 9]);
            assert!(any);
        }
    }

    #[test]
    fn a_failed_rank_ends_the_others_waits_with_an_error() {
        let group = ThreadGroup::new(2);
        let waited = std::thread::scope(|s| {
            let other = s.spawn(|| {
                let rank = group.rank(1);
                rank.sum_f64(&mut [1.0])
            });
            // Rank 0 fails before its first exchange: its end is dropped unfinished.
            drop(group.rank(0));
            other.join().unwrap()
        });
        let err = waited.unwrap_err().to_string();
        assert!(err.contains("replica 0 ended with an error"), "{err}");
    }

    /// One build for a group: the others get clones of it (the same allocation), and the slot
    /// is empty once they all have; a failed build leaves it to the next replica.
    #[test]
    fn a_model_slot_builds_once_and_hands_out_clones() {
        let slot = ModelSlot::default();
        let builds = std::sync::atomic::AtomicUsize::new(0);
        let build = || {
            builds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Arc::new(vec![1u8; 1000]))
        };
        let failed: Result<Arc<Vec<u8>>, _> =
            slot.build_once(2, || Err(TrainError::Job("no".into())));
        assert!(failed.is_err());
        let group = ThreadGroup::new(3);
        let models: Vec<Arc<Vec<u8>>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| s.spawn(|| group.model.build_once(2, build).expect("built")))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("joins"))
                .collect()
        });
        assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(models.iter().all(|m| Arc::ptr_eq(m, &models[0])));
        assert!(group.model.0.lock().expect("lock").is_none(), "emptied");
        // The slot kept nothing: the three clones are the only owners.
        assert_eq!(Arc::strong_count(&models[0]), 3);
    }
}
