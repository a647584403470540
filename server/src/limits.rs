//! The open-file limit: raised on start, and checked against `--max-clients` so the server
//! refuses a limit it could not honour instead of failing at connection 1,021.
//!
//! Each connection holds one descriptor, and the server about a dozen of its own (listener, epoll,
//! stdio). A default limit leaves room for those; an explicit one may use the whole limit (load
//! harnesses ask for exactly `ulimit -n` clients), and should the last connections not fit, the
//! accept loop still answers them with `! server full` through a reserve descriptor.

use anyhow::bail;

/// Raises the soft open-file limit to the hard limit, or to `wanted` when that is higher and
/// the process may raise its hard limit (root). Returns the limit now in force.
pub fn raise_open_files(wanted: u64) -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if wanted > limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: wanted,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return Ok(wanted);
            }
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// Descriptors the server uses besides its connections.
const OWN_FDS: u64 = 16;

/// Open files wanted for `clients` connections.
pub fn files_needed(clients: u32) -> u64 {
    u64::from(clients) + OWN_FDS
}

/// Checks a `--max-clients` the user asked for; a default that does not fit is lowered instead.
pub fn fit_max_clients(
    requested: Option<u32>,
    default: u32,
    open_files: u64,
) -> anyhow::Result<u32> {
    let comfortable = open_files.saturating_sub(OWN_FDS);
    match requested {
        Some(n) if u64::from(n) > open_files => bail!(
            "--max-clients {n} needs {} open files, but the limit is {open_files}; \
             raise it (ulimit -n) or lower --max-clients to {comfortable}",
            files_needed(n)
        ),
        Some(n) => {
            if u64::from(n) > comfortable {
                tracing::warn!(
                    "--max-clients {n} leaves no room for the server's own {OWN_FDS} open files \
                     under the limit of {open_files}: the last connections may get `! server full`"
                );
            }
            Ok(n)
        }
        None if u64::from(default) > comfortable => {
            let lowered = u32::try_from(comfortable).unwrap_or(u32::MAX).max(1);
            tracing::warn!(
                "the open-file limit of {open_files} is too low for {default} clients; \
                 --max-clients lowered to {lowered} (raise the limit with ulimit -n)"
            );
            Ok(lowered)
        }
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_limit_that_does_not_fit_is_refused() {
        let err = fit_max_clients(Some(2000), 10_000, 1024)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--max-clients 2000"), "{err}");
        assert!(err.contains("ulimit -n"), "{err}");
    }

    #[test]
    fn explicit_limit_that_fits_is_kept() {
        assert_eq!(fit_max_clients(Some(500), 10_000, 1024).ok(), Some(500));
        assert_eq!(fit_max_clients(Some(1024), 10_000, 1024).ok(), Some(1024));
    }

    #[test]
    fn default_is_lowered_to_fit() {
        assert_eq!(fit_max_clients(None, 10_000, 1024).ok(), Some(1008));
        assert_eq!(fit_max_clients(None, 10_000, 1 << 20).ok(), Some(10_000));
    }
}
