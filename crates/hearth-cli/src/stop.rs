//! Ctrl-C (SIGINT) and SIGTERM during `hearth train`. The first asks the run to stop after the
//! current step, through the run's shared stop flag ([`hearth_train::RunHooks::stop`]), so
//! the run ends with a checkpoint as on the page's Stop button; the process then exits
//! with 130 and says how to resume. A second one exits at once: the checkpoints already
//! written are complete, a half-written one is never read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The exit code of a run stopped by a signal (128 + SIGINT, the shell's convention).
pub const EXIT_CODE: u8 = 130;

/// Whether the user asked the run to stop.
#[derive(Debug, Clone, Default)]
pub struct StopRequest(Arc<AtomicBool>);

impl StopRequest {
    /// Listens for Ctrl-C and SIGTERM from now on. Where no handler can be set (one is
    /// already), the run goes on without one and says so.
    pub fn listen() -> Self {
        let request = Self::default();
        let flag = request.0.clone();
        let set = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                eprintln!("\nstopped at once; the checkpoints written so far are kept");
                std::process::exit(i32::from(EXIT_CODE));
            }
            eprintln!(
                "\nstopping after the current step and writing a checkpoint \
                 (press Ctrl-C again to quit at once)"
            );
        });
        if let Err(e) = set {
            crate::ranks::warn(format!("Ctrl-C will end the run at once ({e})"));
        }
        request
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The flag the run watches ([`hearth_train::RunHooks::stop`]).
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }
}

/// The error a run stopped by the user ends with: `main` prints it without `error:` and exits
/// with [`EXIT_CODE`].
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}
