//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_stormwatch")
}

/// Runs the binary with an isolated data dir and config dir.
pub fn run(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("STORMWATCH_DATA_DIR", data_dir)
        .env("XDG_CONFIG_HOME", data_dir.join("config"))
        .env_remove("STORMWATCH_CONFIG")
        .output()
        .expect("run stormwatch")
}

/// stdout must be exactly one JSON document.
pub fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stormwatch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
