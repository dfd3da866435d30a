//! Files and directories only their owner can read: the store and the log file quote log text,
//! and log text can hold secrets.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `path` (or tightens an existing file) with mode 0600, without truncating it.
pub fn file(path: &Path) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
}

/// Creates `dir` and its parents with mode 0700 when it does not exist; an existing directory is
/// left as the operator made it.
pub fn dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
