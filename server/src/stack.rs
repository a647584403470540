//! Giving back the stack pages a reader thread touched only once.
//!
//! With a thread per connection, memory per idle user is mostly the stack pages each thread has
//! touched: Linux keeps a page resident once written. Logging a login formats deep in the stack,
//! and those pages would stay resident for the connection's whole life although an idle reader
//! only ever needs the top two. So after login the thread returns every page below its current
//! frame (less a safety page) to the kernel; should it need them again, they come back zeroed.

use std::ffi::c_void;

/// Bytes below this function's frame that stay mapped, for the `madvise` call's own frame (a
/// syscall stub: a return address and a few words).
const MARGIN_BYTES: usize = 512;

/// Releases the calling thread's unused stack pages. Best effort: does nothing on failure.
#[inline(never)]
pub fn release_unused() {
    let marker = 0u8;
    let sp = std::hint::black_box(&marker) as *const u8 as usize;
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => return,
    };
    let Some((low, _high)) = current_stack() else {
        return;
    };
    let keep_from = sp.saturating_sub(MARGIN_BYTES) & !(page - 1);
    if keep_from <= low {
        return;
    }
    // SAFETY: [low, keep_from) lies inside this thread's own stack mapping and entirely below
    // the live frames and the margin for the call below, so it holds no data anyone will read;
    // MADV_DONTNEED makes it read back as zeroes.
    unsafe {
        libc::madvise(low as *mut c_void, keep_from - low, libc::MADV_DONTNEED);
    }
}

/// The calling thread's stack mapping, as (lowest address, highest address).
fn current_stack() -> Option<(usize, usize)> {
    // SAFETY: the attribute object is initialised by pthread_getattr_np before it is read and
    // destroyed once; getstack only writes the two out-parameters.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let got = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (got == 0).then(|| (addr as usize, addr as usize + size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn touch_deep(depth: usize) -> u8 {
        let mut buf = [0u8; 1024];
        buf[depth % 1024] = depth as u8;
        if depth == 0 {
            return std::hint::black_box(buf)[0];
        }
        touch_deep(depth - 1).wrapping_add(std::hint::black_box(buf)[1])
    }

    /// Resident KiB of the mapping that holds `addr`, from /proc/self/smaps.
    fn resident_kib(addr: usize) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut in_mapping = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((start, end)) = range.split_once('-') {
                    if let (Ok(start), Ok(end)) = (
                        usize::from_str_radix(start, 16),
                        usize::from_str_radix(end, 16),
                    ) {
                        in_mapping = (start..end).contains(&addr);
                        continue;
                    }
                }
            }
            if in_mapping {
                if let Some(kib) = line.strip_prefix("Rss:") {
                    return kib
                        .trim()
                        .trim_end_matches(" kB")
                        .trim()
                        .parse()
                        .expect("Rss");
                }
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    #[test]
    fn released_pages_leave_memory_and_come_back_working() {
        let result = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(|| {
                let (low, high) = current_stack().expect("stack bounds");
                assert!(high - low >= 1024 * 1024);
                let before = touch_deep(100);
                let touched = resident_kib(high - 1);
                release_unused();
                let released = resident_kib(high - 1);
                // The pages come back zeroed and work as before.
                let after = touch_deep(100);
                (before, after, touched, released)
            })
            .expect("spawn")
            .join()
            .expect("thread panicked");
        let (before, after, touched, released) = result;
        assert_eq!(before, after);
        assert!(touched >= 100, "deep calls touched only {touched} KiB");
        assert!(
            released + 64 < touched,
            "{touched} KiB before, {released} KiB after"
        );
    }
}
