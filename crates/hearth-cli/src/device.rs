//! The one place the native build chooses a backend.

use anyhow::{Result, bail};
use burn::tensor::Device;

use crate::args::{DeviceChoice, RunArgs};

/// The cores of this machine.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// `--threads`, at most the cores the machine has (more only queue behind each other, and a
/// huge count never starts); 0 = all cores.
fn resolve_threads(threads: usize) -> usize {
    let cores = cores();
    if threads > cores {
        crate::ranks::warn(format!(
            "--threads {threads} is more than the {cores} this machine has; using {cores}"
        ));
        cores
    } else if threads == 0 {
        cores
    } else {
        threads
    }
}

/// Sets the CPU thread count once (rayon's global pool, which Flex uses).
pub fn set_threads(threads: usize) -> Result<()> {
    let threads = resolve_threads(threads);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| anyhow::anyhow!("setting {threads} threads: {e}"))
}

/// How a CPU training run uses its threads: `count` replicas of the model, each training its
/// share of every micro-batch with `threads_each` threads ([`hearth_train::ThreadGroup`]).
///
/// Flex runs its matrix products on every thread but most element-wise work (GELU, softmax,
/// masks, copies) on one, so one model leaves cores idle for about half of a step; replicas
/// keep them all busy through the whole step, as data-parallel ranks do over MPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replicas {
    pub count: usize,
    pub threads_each: usize,
}

/// Rows of a micro-batch each replica gets at least when their number is chosen for the user:
/// fewer make matrix products too thin to pay for a replica.
const ROWS_PER_REPLICA: usize = 4;

/// The replicas of a training run: `asked` (`--replicas`; 0 = one per thread while each gets
/// at least [`ROWS_PER_REPLICA`] rows of the `batch_size`), on the CPU only and never under
/// MPI (whose ranks already split the batch); at most one per row.
pub fn replicas(run: &RunArgs, asked: usize, batch_size: usize, mpi: bool) -> Replicas {
    let threads = resolve_threads(run.threads);
    if run.device != DeviceChoice::Cpu || mpi {
        return Replicas {
            count: 1,
            threads_each: threads,
        };
    }
    let count = match asked {
        0 => threads.min(batch_size / ROWS_PER_REPLICA).max(1),
        n if n > batch_size.max(1) => {
            crate::ranks::warn(format!(
                "--replicas {n} is more than the {batch_size} rows of a batch; using {}",
                batch_size.max(1)
            ));
            batch_size.max(1)
        }
        n => n,
    };
    Replicas {
        count,
        threads_each: (threads / count).max(1),
    }
}

/// The device of `choice`, on the node's `gpu`-th discrete GPU where given (one rank per GPU
/// of a multi-GPU node) unless `CUBECL_WGPU_DEFAULT_DEVICE` names the device.
#[cfg_attr(not(feature = "wgpu"), allow(unused_variables))]
fn on_gpu(choice: DeviceChoice, gpu: Option<usize>) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        DeviceChoice::Wgpu => Ok(Device::wgpu(
            match gpu.filter(|_| std::env::var_os("CUBECL_WGPU_DEFAULT_DEVICE").is_none()) {
                Some(index) => burn::tensor::DeviceKind::DiscreteGpu(index),
                None => burn::tensor::DeviceKind::DefaultDevice,
            },
        )),
        #[cfg(not(feature = "wgpu"))]
        DeviceChoice::Wgpu => bail!("this hearth was built without the `wgpu` feature"),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        DeviceChoice::Ndarray => Ok(Device::ndarray()),
        #[cfg(not(feature = "ndarray"))]
        DeviceChoice::Ndarray => bail!("this hearth was built without the `ndarray` feature"),
    }
}

/// Applies `--threads` and returns the device of `--device`.
pub fn from_args(run: &RunArgs) -> Result<Device> {
    for_rank(run, None)
}

/// [`from_args`] for one rank of a data-parallel job: with several ranks on a node, each
/// takes its own GPU (`local_gpu`, its rank on the node).
pub fn for_rank(run: &RunArgs, local_gpu: Option<usize>) -> Result<Device> {
    set_threads(run.threads)?;
    on_gpu(run.device, local_gpu)
}

/// [`for_rank`] for a training run of `replicas`: the thread pool is the first replica's.
pub fn for_replicas(run: &RunArgs, replicas: Replicas, local_gpu: Option<usize>) -> Result<Device> {
    set_threads(replicas.threads_each)?;
    on_gpu(run.device, local_gpu)
}
