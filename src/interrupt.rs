//! Ctrl-C / SIGTERM: the handler only raises a flag; long loops check it between batches
//! and stop with `Error::Interrupted`, so outputs (written to temporary names and renamed at
//! the end) are never left half-written.
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (SIGINT and SIGTERM); a second signal exits at once with 130.
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
}

/// Raises the flag (tests; the handler does this on a signal).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Errors when a stop was requested.
pub fn check() -> Result<()> {
    if REQUESTED.load(Ordering::Relaxed) {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}
