//! Giving memory back to the system after a burst.
//!
//! A burst of output (10,000 users logging in, each join announced to everyone) grows thousands
//! of output queues at once; once they drain, glibc keeps the freed pages inside its arenas. A
//! housekeeping thread notices when output has gone quiet after activity and calls
//! `malloc_trim`, which returns whole free pages to the kernel. During steady traffic it does
//! nothing, so it never fights the allocator while the server is busy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

/// How often the thread looks; a trim follows one quiet tick after activity.
const TICK: Duration = Duration::from_millis(250);

/// Bytes handed to client sockets since start; bumped by the flushers.
static OUTPUT_BYTES: AtomicU64 = AtomicU64::new(0);

/// Counts output, so the housekeeper can tell busy from quiet.
pub fn count_output(bytes: usize) {
    OUTPUT_BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
}

/// Starts the housekeeping thread.
pub fn start() -> std::io::Result<()> {
    thread::Builder::new()
        .name("housekeeping".into())
        .stack_size(64 * 1024)
        .spawn(run)
        .map(drop)
}

fn run() {
    let mut seen = OUTPUT_BYTES.load(Ordering::Relaxed);
    let mut busy_since_trim = false;
    loop {
        thread::sleep(TICK);
        let now = OUTPUT_BYTES.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            busy_since_trim = true;
        } else if busy_since_trim {
            busy_since_trim = false;
            // SAFETY: malloc_trim has no preconditions; it only releases free memory.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }
}
