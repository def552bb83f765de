//! The `hearth` binary end to end: what a user types, what they see, and that bad input ends
//! with a message and exit code 1 rather than a panic. One test binary (one link) with a module
//! per topic over one harness, `util`, as ripgrep's tests are laid out.

mod compat;
mod errors;
mod files;
mod flags;
mod inspect;
#[cfg(feature = "mpi")]
mod mpi;
mod peft;
mod plan;
mod replicas;
mod resume;
mod sft;
mod train;
mod util;
