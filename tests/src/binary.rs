//! Building and locating the workspace's binaries (`chat-server`, `chat-client`, `chat-bench`).
//!
//! They belong to other packages of the workspace, so cargo does not build them for this crate's
//! tests. On first use of each, a test executable runs `cargo build --bin NAME` with the same
//! profile and target directory as itself (a no-op when it is up to date).

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The path of a freshly built `chat-server`; panics with cargo's output if the build fails.
pub fn server_binary() -> &'static Path {
    binary("chat-server")
}

/// The path of the freshly built workspace binary `name`; panics with cargo's output if the
/// build fails. Each binary is built once per test executable.
pub fn binary(name: &str) -> &'static Path {
    static BUILT: OnceLock<Mutex<HashMap<String, &'static Path>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(path) = built.get(name) {
        return path;
    }
    let path: &'static Path = Box::leak(build(name).into_boxed_path());
    built.insert(name.to_owned(), path);
    path
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// The target directory and the profile directory name (`debug`, `release`, ...) of this run.
fn target_and_profile() -> (PathBuf, String) {
    let exe = std::env::current_exe().expect("current_exe of the test binary");
    // <target>/<profile>/deps/<test-binary>
    let deps = exe.parent();
    if let Some(deps) = deps.filter(|d| d.file_name().is_some_and(|n| n == "deps")) {
        if let Some(profile_dir) = deps.parent() {
            if let (Some(target), Some(profile)) = (profile_dir.parent(), profile_dir.file_name()) {
                return (target.to_path_buf(), profile.to_string_lossy().into_owned());
            }
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    (target, "debug".to_owned())
}

fn build(name: &str) -> PathBuf {
    let (target, profile) = target_and_profile();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--bin", name, "--target-dir"])
        .arg(&target);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cargo:?} build --bin {name}: {e}"));
    if !out.status.success() {
        panic!(
            "`cargo build --bin {name}` ({profile}) failed with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let path = target.join(&profile).join(name);
    assert!(
        path.is_file(),
        "cargo built {name} but {} does not exist",
        path.display()
    );
    path
}
