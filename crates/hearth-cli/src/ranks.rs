//! The processes a `hearth` command runs in: one, or the ranks of a data-parallel job that
//! `mpirun` or `srun` started (docs/DISTRIBUTED.md). MPI lives here only, behind the `mpi`
//! feature; the training crate sees a [`Collective`].

use anyhow::{Result, bail};
use hearth_train::{Collective, Single};

/// " (rank r of N)" in a data-parallel job, set once the ranks are known.
static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Prints a warning on stderr; in a data-parallel job, tagged with this process's rank (every
/// rank may warn, only rank 0 prints anything else).
pub fn warn(message: impl std::fmt::Display) {
    use std::io::Write;
    let tag = TAG.get().map_or("", String::as_str);
    // One write for the whole line: the ranks share the launcher's stderr, and a line written
    // in pieces would interleave with another rank's.
    let line = format!("warning{tag}: {message}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// The number of processes the launcher says it started, from the variables Open MPI,
/// MPICH/Hydra, MVAPICH and Slurm set for each of them (`None` outside a launcher).
fn launched_size() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "MV2_COMM_WORLD_SIZE",
        "PMIX_SIZE",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse().ok())
    .or_else(|| {
        // `srun --mpi=pmix` sets PMIX_RANK and Slurm's own task count.
        std::env::var_os("PMIX_RANK")?;
        std::env::var("SLURM_NTASKS").ok()?.parse().ok()
    })
}

/// This process's place in the job.
pub struct Ranks {
    collective: Box<dyn Collective>,
    /// Rank among the processes on this node (picks the GPU of a multi-GPU node).
    local_rank: usize,
    local_size: usize,
    #[cfg(feature = "mpi")]
    _universe: Option<mpi::environment::Universe>,
}

impl Ranks {
    /// One process, or, under a launcher that started several, the MPI job's ranks; an
    /// error for a `hearth` built without the `mpi` feature, whose copies would each train
    /// alone and write over each other.
    pub fn from_env() -> Result<Self> {
        let size = launched_size().unwrap_or(1);
        if size <= 1 {
            return Ok(Self::single());
        }
        Self::mpi(size)
    }

    fn single() -> Self {
        Self {
            collective: Box::new(Single),
            local_rank: 0,
            local_size: 1,
            #[cfg(feature = "mpi")]
            _universe: None,
        }
    }

    #[cfg(not(feature = "mpi"))]
    fn mpi(size: usize) -> Result<Self> {
        bail!(
            "started as one of {size} processes (mpirun or srun), but this hearth was built \
             without the `mpi` feature, so each would train alone; build it with \
             `cargo build --release -p hearth-cli --features mpi` (docs/DISTRIBUTED.md)"
        )
    }

    #[cfg(feature = "mpi")]
    fn mpi(_size: usize) -> Result<Self> {
        use mpi::traits::Communicator;
        // Only the main thread calls MPI (the compute threads never do).
        let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Funneled) else {
            bail!("MPI was already initialized");
        };
        let world = universe.world();
        let node = world.split_shared(world.rank());
        let (local_rank, local_size) = (node.rank() as usize, node.size() as usize);
        let _ = TAG.set(format!(" (rank {} of {})", world.rank(), world.size()));
        Ok(Self {
            collective: Box::new(mpi_impl::Mpi { world }),
            local_rank,
            local_size,
            _universe: Some(universe),
        })
    }

    /// What the run trains with.
    pub fn collective(&self) -> &dyn Collective {
        &*self.collective
    }

    /// Whether this process writes files and prints the run's progress (rank 0).
    pub fn is_leader(&self) -> bool {
        self.collective.is_leader()
    }

    /// Rank and node-local rank, for messages and device choice.
    pub fn describe(&self) -> String {
        format!(
            "rank {} of {}",
            self.collective.rank(),
            self.collective.size()
        )
    }

    /// With several processes on one node, the index of this one's GPU among the node's.
    pub fn local_gpu(&self) -> Option<usize> {
        (self.local_size > 1).then_some(self.local_rank)
    }

    /// Several ranks.
    pub fn is_parallel(&self) -> bool {
        self.collective.size() > 1
    }

    /// Ends the whole job: with several ranks MPI stops the others too (they may be waiting
    /// in a collective for this one), so the launcher exits non-zero.
    pub fn abort(&self, code: i32) -> ! {
        #[cfg(feature = "mpi")]
        if let Some(universe) = &self._universe {
            use mpi::traits::Communicator;
            universe.world().abort(code);
        }
        std::process::exit(code)
    }
}

#[cfg(feature = "mpi")]
mod mpi_impl {
    use hearth_train::{Collective, TrainError};
    use mpi::collective::SystemOperation;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::{Communicator, Root};

    /// MPI's world communicator. Sums go to rank 0 and come back by broadcast, so every rank
    /// holds the very same bits (an all-reduce may add in a different order on each rank).
    pub struct Mpi {
        pub world: SimpleCommunicator,
    }

    impl Mpi {
        fn sum<T: mpi::datatype::Equivalence + Copy + Default>(&self, values: &mut [T]) {
            let root = self.world.process_at_rank(0);
            if self.world.rank() == 0 {
                let mut total = vec![T::default(); values.len()];
                root.reduce_into_root(&*values, &mut total[..], SystemOperation::sum());
                values.copy_from_slice(&total);
            } else {
                root.reduce_into(&*values, SystemOperation::sum());
            }
            root.broadcast_into(values);
        }
    }

    impl Collective for Mpi {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }
        fn size(&self) -> usize {
            self.world.size() as usize
        }
        fn sum_f32(&self, values: &mut [f32]) -> Result<(), TrainError> {
            self.sum(values);
            Ok(())
        }
        fn sum_f64(&self, values: &mut [f64]) -> Result<(), TrainError> {
            self.sum(values);
            Ok(())
        }
        fn broadcast(&self, bytes: &mut Vec<u8>) -> Result<(), TrainError> {
            let root = self.world.process_at_rank(0);
            let mut len = bytes.len() as u64;
            root.broadcast_into(&mut len);
            bytes.resize(len as usize, 0);
            root.broadcast_into(&mut bytes[..]);
            Ok(())
        }
    }
}
