//! Standard output that remembers whether its reader went away (`auditlake ... | head`).
//!
//! Libraries that write for us wrap an I/O error in their own (arrow's CSV writer keeps
//! only its text), so a closed pipe cannot always be found in an error's chain. Every
//! write to stdout goes through [`Stdout`], which notes a broken pipe where it happens;
//! `main` then ends quietly with exit 0 whatever error the writer made of it.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a write to stdout found its reader gone.
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// The process's stdout, locked, noting a broken pipe.
pub struct Stdout(io::StdoutLock<'static>);

/// Locks stdout for writing through [`Stdout`].
pub fn lock() -> Stdout {
    Stdout(io::stdout().lock())
}

fn note<T>(result: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &result {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::Relaxed);
        }
    }
    result
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        note(self.0.write(buf))
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        note(self.0.write_all(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        note(self.0.flush())
    }
}
