//! The one place the native build chooses a backend.

use anyhow::{Result, bail};
use burn::tensor::Device;

use crate::args::{DeviceChoice, RunArgs};

/// Sets the CPU thread count once (rayon's global pool, which Flex uses), at most the cores
/// the machine has: more only queue behind each other (and a huge count never starts).
pub fn set_threads(threads: usize) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let threads = if threads > cores {
        crate::ranks::warn(format!(
            "--threads {threads} is more than the {cores} this machine has; using {cores}"
        ));
        cores
    } else {
        threads
    };
    if threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .map_err(|e| anyhow::anyhow!("setting {threads} threads: {e}"))?;
    }
    Ok(())
}

/// The device a command runs on (without autodiff).
pub fn device(choice: DeviceChoice) -> Result<Device> {
    on_gpu(choice, None)
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
