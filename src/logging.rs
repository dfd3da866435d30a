//! The file log. stdout belongs to the console (and to `--json` documents), so diagnostics go to
//! `stormwatch.log` in the data dir, plain text without colour codes.

use std::path::Path;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

pub const LOG_FILE: &str = "stormwatch.log";

/// Starts logging to `dir/stormwatch.log`; `STORMWATCH_LOG` sets the filter (default `info`).
/// Keep the guard alive until exit so buffered lines are written.
pub fn init(dir: &Path) -> std::io::Result<WorkerGuard> {
    crate::owner_only::dir(dir)?;
    crate::owner_only::file(&dir.join(LOG_FILE))?;
    let appender = tracing_appender::rolling::never(dir, LOG_FILE);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter =
        EnvFilter::try_from_env("STORMWATCH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests calling twice) keeps the first subscriber; that is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer)
        .try_init();
    Ok(guard)
}
