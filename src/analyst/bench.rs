//! `stormwatch bench analyst`: how fast the local model answers on this machine — load, prompt
//! evaluation, first token and full answer on a full-size evidence pack — next to llama.cpp's own
//! speed on the same model file: measured in this process the way `llama-bench` measures it
//! (plain decode, no grammar or sampling), and by a `llama-bench` binary when one is given.
//! (`llama-cpp-sys-2` vendors llama.cpp without the tools' sources, so there is none to build.)

use super::consult::{Who, finish, request};
use super::local::{LocalConfig, LocalModel, RawSpeed, Stats, Status};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct AnalystBench {
    pub model: String,
    pub threads: usize,
    pub load_ms: f64,
    pub prompt_tokens: usize,
    /// Of those, the system prompt's tokens whose KV state is reused.
    pub reused_tokens: usize,
    pub first_token_ms: f64,
    pub answer_ms: f64,
    pub prompt_tok_s: f64,
    pub gen_tok_s: f64,
    pub gen_tokens: usize,
    /// Requests timed; the figures are their medians.
    pub runs: usize,
    /// Whether the answer passed the schema and pack check.
    pub answer_valid: bool,
    /// llama.cpp's plain decode speed in this process for the same prompt and answer sizes.
    pub llama_cpp: RawSpeed,
    /// A `llama-bench` binary's figures, with `--llama-bench PATH`.
    pub llama_bench: Option<LlamaBench>,
    /// Why there is no llama-bench figure, when there is none.
    pub llama_bench_note: Option<String>,
}

/// llama.cpp's own figures for the same model, prompt size and answer length.
#[derive(Debug, Clone, Serialize)]
pub struct LlamaBench {
    pub binary: PathBuf,
    pub prompt_tok_s: f64,
    pub gen_tok_s: f64,
    pub n_prompt: usize,
    pub n_gen: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Model(String),
    #[error(
        "no injected incident was detected in the demo seeds; run `stormwatch eval demo` to see why"
    )]
    NoPack,
}

fn median_by(runs: &[Stats], f: impl Fn(&Stats) -> f64) -> f64 {
    crate::eval::analyst::median(&mut runs.iter().map(f).collect::<Vec<_>>())
}

/// One comparison line: another decoder's speed and ours as a share of it.
fn compared(
    label: &str,
    n_prompt: usize,
    n_gen: usize,
    pp: f64,
    tg: f64,
    ours: (f64, f64),
) -> String {
    format!(
        "{label} (pp{n_prompt} / tg{n_gen}): prompt {pp:.0} tok/s · generation {tg:.0} tok/s \
         (ours: {:.0} % / {:.0} %)\n",
        100.0 * ours.0 / pp.max(1e-9),
        100.0 * ours.1 / tg.max(1e-9)
    )
}

/// Times `runs` answers on the demo's largest pack, then llama.cpp's plain speed in process and,
/// given `binary`, llama-bench's.
pub fn run(
    cfg: LocalConfig,
    threshold: f64,
    runs: usize,
    binary: Option<&Path>,
) -> Result<AnalystBench, BenchError> {
    let (inc, pack) = crate::eval::analyst::largest_pack(3, threshold).ok_or(BenchError::NoPack)?;
    let threads = if cfg.threads == 0 {
        crate::cli::worker_threads(None)
    } else {
        cfg.threads
    };
    let path = cfg.path.clone();
    let model = LocalModel::start(cfg);
    model
        .wait_ready(Duration::from_secs(120))
        .map_err(|e| BenchError::Model(e.to_string()))?;
    let (name, load_ms) = match model.status() {
        Status::Ready { name, load_ms, .. } => (name, load_ms),
        other => return Err(BenchError::Model(format!("{other:?}"))),
    };
    let mut stats = Vec::new();
    let mut valid = true;
    for _ in 0..runs.max(1) {
        let result = request(&pack)
            .map_err(|e| BenchError::Model(e.to_string()))?
            .ask(&model)
            .wait(|_| {});
        if let Ok((_, s)) = &result {
            stats.push(s.clone());
        }
        let analysis = finish(&inc, &pack, &name, result);
        if let Who::Rules { why } = &analysis.who {
            valid = false;
            if stats.is_empty() {
                return Err(BenchError::Model(why.clone()));
            }
        }
    }
    let prompt_tokens = stats.first().map_or(0, |s| s.prompt_tokens);
    let reused_tokens = stats.first().map_or(0, |s| s.reused_tokens);
    let gen_tokens = median_by(&stats, |s| s.gen_tokens as f64) as usize;
    let evaluated = prompt_tokens - reused_tokens;
    let llama_cpp = model
        .raw_speed(evaluated, gen_tokens, 3)
        .map_err(|e| BenchError::Model(e.to_string()))?;
    drop(model);
    let (llama_bench, llama_bench_note) = match binary {
        None => (
            None,
            Some("no binary given (--llama-bench PATH)".to_string()),
        ),
        Some(b) => match llama_bench_figures(b, &path, evaluated, gen_tokens, threads) {
            Ok(lb) => (Some(lb), None),
            Err(e) => (None, Some(e)),
        },
    };
    Ok(AnalystBench {
        model: name,
        threads,
        load_ms,
        prompt_tokens,
        reused_tokens,
        first_token_ms: median_by(&stats, |s| s.first_token_ms),
        answer_ms: median_by(&stats, |s| s.answer_ms),
        prompt_tok_s: median_by(&stats, |s| s.prompt_tok_s),
        gen_tok_s: median_by(&stats, |s| s.gen_tok_s),
        gen_tokens,
        runs: stats.len(),
        answer_valid: valid,
        llama_cpp,
        llama_bench,
        llama_bench_note,
    })
}

/// Runs llama-bench for a prompt of `n_prompt` tokens and `n_gen` generated ones.
fn llama_bench_figures(
    exe: &Path,
    model: &Path,
    n_prompt: usize,
    n_gen: usize,
    threads: usize,
) -> Result<LlamaBench, String> {
    let (n_prompt, n_gen) = (n_prompt.max(1), n_gen.max(1));
    let out = Command::new(exe)
        .arg("-m")
        .arg(model)
        .args(["-p", &n_prompt.to_string(), "-n", &n_gen.to_string()])
        .args(["-t", &threads.to_string(), "-r", "3", "-o", "json"])
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    if !out.status.success() {
        return Err(format!(
            "llama-bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("llama-bench printed no JSON: {e}"))?;
    let rate = |prompt: bool| {
        rows.iter()
            .find(|r| {
                let p = r["n_prompt"].as_u64().unwrap_or(0);
                let g = r["n_gen"].as_u64().unwrap_or(0);
                if prompt {
                    p > 0 && g == 0
                } else {
                    g > 0 && p == 0
                }
            })
            .and_then(|r| r["avg_ts"].as_f64())
            .ok_or_else(|| "llama-bench printed no figure".to_string())
    };
    Ok(LlamaBench {
        binary: exe.to_path_buf(),
        prompt_tok_s: rate(true)?,
        gen_tok_s: rate(false)?,
        n_prompt,
        n_gen,
    })
}

impl AnalystBench {
    pub fn render(&self) -> String {
        let mut s = format!(
            "analyst model {} on {} threads ({} run(s), medians)\n\
             load {:.0} ms (system prompt evaluated once: {} tokens)\n\
             prompt {} tokens ({} evaluated) at {:.0} tok/s · first token {:.0} ms · answer {:.0} ms \
             ({} tokens at {:.0} tok/s under the grammar){}\n",
            self.model,
            self.threads,
            self.runs,
            self.load_ms,
            self.reused_tokens,
            self.prompt_tokens,
            self.prompt_tokens - self.reused_tokens,
            self.prompt_tok_s,
            self.first_token_ms,
            self.answer_ms,
            self.gen_tokens,
            self.gen_tok_s,
            if self.answer_valid {
                ""
            } else {
                " · answer failed the check"
            }
        );
        let ours = (self.prompt_tok_s, self.gen_tok_s);
        let raw = &self.llama_cpp;
        s.push_str(&compared(
            "llama.cpp plain decode, same file and sizes, llama-bench's method",
            raw.n_prompt,
            raw.n_gen,
            raw.prompt_tok_s,
            raw.gen_tok_s,
            ours,
        ));
        match (&self.llama_bench, &self.llama_bench_note) {
            (Some(lb), _) => s.push_str(&compared(
                "llama-bench, same file",
                lb.n_prompt,
                lb.n_gen,
                lb.prompt_tok_s,
                lb.gen_tok_s,
                ours,
            )),
            (None, Some(n)) => s.push_str(&format!("llama-bench: {n}\n")),
            (None, None) => {}
        }
        s.push_str("targets on 2 cores: first token < 1000 ms, answer < 5000 ms\n");
        s
    }
}
