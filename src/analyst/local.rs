//! The local model: one thread owns the llama.cpp backend, the model and its context, and answers
//! requests one at a time; prompts go in and streamed text comes back over channels, so the
//! console never waits on a load or an answer. Every request can be cancelled and has a hard
//! deadline. The fixed system prompt is evaluated once per load and its KV state reused, so a
//! request only pays for its own evidence pack.

use super::sampler::GreedyUnderGrammar;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use serde::Serialize;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The analyst's fixed instructions; the incident's facts follow in the user turn.
pub const SYSTEM_PROMPT: &str = include_str!("../../assets/prompts/analyst-system.txt");

#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub path: PathBuf,
    /// Threads for prompt and generation; 0: every core.
    pub threads: usize,
    /// Context size in tokens (capped at what the model was trained with).
    pub context: u32,
    /// Generated tokens at most per answer.
    pub max_tokens: usize,
    /// Hard limit per answer, prompt included.
    pub timeout: Duration,
    /// The file's SHA-256, checked before it loads (the default model's).
    pub sha256: Option<&'static str>,
}

impl LocalConfig {
    pub fn new(path: PathBuf) -> Self {
        LocalConfig {
            path,
            threads: 0,
            context: 2048,
            max_tokens: 320,
            timeout: Duration::from_secs(20),
            sha256: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Loading,
    Ready {
        name: String,
        load_ms: f64,
        /// Tokens of the system prompt kept in the KV cache.
        system_tokens: usize,
    },
    Failed(String),
}

/// Timings of one answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Stats {
    /// Tokens of the whole prompt, the reused system prompt included.
    pub prompt_tokens: usize,
    /// Of those, tokens whose KV state was reused instead of evaluated.
    pub reused_tokens: usize,
    pub prompt_ms: f64,
    pub first_token_ms: f64,
    pub answer_ms: f64,
    pub gen_tokens: usize,
    /// Evaluated (not reused) prompt tokens per second.
    pub prompt_tok_s: f64,
    pub gen_tok_s: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LocalError {
    #[error(
        "could not load the model {path}: {why}. Check it is a GGUF file, or run `stormwatch model pull` for the default"
    )]
    Load { path: PathBuf, why: String },
    #[error(
        "{0} has no chat template; use an instruction-tuned GGUF that carries one (Qwen 2.5, Llama 3.2, Phi, SmolLM2 Instruct)"
    )]
    NoTemplate(PathBuf),
    #[error("the model failed: {0}")]
    Model(String),
    #[error(
        "the prompt needs {tokens} tokens, more than the {context}-token context; lower the evidence budget"
    )]
    TooLong { tokens: usize, context: u32 },
    #[error("cancelled")]
    Cancelled,
    #[error("no answer before the deadline ([analyst] timeout_secs)")]
    TimedOut,
    #[error("the model is not loaded: {0}")]
    NotLoaded(String),
    #[error("the model thread stopped")]
    Gone,
}

/// What a request streams back.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The next piece of the answer.
    Token(String),
    Done {
        text: String,
        stats: Stats,
    },
    Failed(LocalError),
}

/// What the model thread does next.
enum Work {
    Answer(Job),
    /// llama-bench's measurement: decode `n_prompt` tokens as one prompt, then `n_gen` tokens
    /// one at a time, with no grammar or sampling, `reps` times after a warm-up.
    Raw {
        n_prompt: usize,
        n_gen: usize,
        reps: usize,
        reply: mpsc::Sender<Result<RawSpeed, LocalError>>,
    },
}

/// llama.cpp's plain decode speed in this process, measured the way llama-bench does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawSpeed {
    pub n_prompt: usize,
    pub n_gen: usize,
    pub prompt_tok_s: f64,
    pub gen_tok_s: f64,
}

/// A string field whose value is one of `options`, chosen by the model as a question of its own
/// rather than left to greedy decoding inside the answer.
///
/// Greedy decoding commits to the likeliest first token (a small model then picks whichever
/// option starts most plausibly), and in the middle of the answer the model's own sentences
/// sway it: SmolLM2 named an attacker's address in its root cause and then copied it as the
/// entity. So when the answer reaches `key`, the model is asked separately: every option
/// completes `cue` ("The incident is about") right after the user turn, once with the facts
/// (`user` as sent) and once with `without_facts` (the same turn listing only the candidates).
/// An option scores its log-probability with the facts plus what the facts added to it:
/// `with + (with - without)`. Likelihood alone favours strings a small model likes whatever the
/// evidence (addresses over access keys); the difference alone overcorrects towards whatever
/// the candidate list made unlikely. See [`EVIDENCE_WEIGHT`].
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub key: String,
    pub options: Vec<String>,
    pub cue: String,
    pub without_facts: String,
}

/// Weight of what the facts add to an option's log-probability, on top of the log-probability
/// itself. Measured with `eval analyst` (SmolLM2-135M, cue "The incident is about"): entity
/// accuracy on seeds 1-10 was 0.725 at 0, 0.85 at 1 and 0.775 with the difference alone; the
/// unweighted sum (1) was kept: 0.90 on seeds 1-20, 0.91 on seeds 21-40, which chose nothing.
const EVIDENCE_WEIGHT: f64 = 1.0;

/// KV sequences beside the answer's own (0): the choice's question with the facts and without.
const SEQ_WITH_FACTS: i32 = 1;
const SEQ_WITHOUT_FACTS: i32 = 2;

struct Job {
    user: String,
    grammar: String,
    choices: Vec<Choice>,
    cancel: Arc<AtomicBool>,
    deadline: Instant,
    events: mpsc::Sender<Event>,
}

/// A request in flight.
pub struct Ticket {
    pub events: mpsc::Receiver<Event>,
    cancel: Arc<AtomicBool>,
    deadline: Instant,
}

impl Ticket {
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Past the deadline the model thread gives up at its next token; callers waiting longer
    /// than this plus a second treat the answer as timed out without it.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Blocks until the answer is complete; `on_token` sees it as it streams.
    pub fn wait(self, mut on_token: impl FnMut(&str)) -> Result<(String, Stats), LocalError> {
        loop {
            let left = self
                .deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(10))
                + Duration::from_secs(1);
            match self.events.recv_timeout(left) {
                Ok(Event::Token(t)) => on_token(&t),
                Ok(Event::Done { text, stats }) => return Ok((text, stats)),
                Ok(Event::Failed(e)) => return Err(e),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.cancel();
                    return Err(LocalError::TimedOut);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(LocalError::Gone),
            }
        }
    }
}

/// The handle the console, `eval` and `bench` hold; dropping it stops the thread after the
/// request in progress.
pub struct LocalModel {
    jobs: Mutex<mpsc::Sender<Work>>,
    status: Arc<Mutex<Status>>,
    timeout: Duration,
}

/// llama.cpp's backend may be initialised once per process.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut b = LlamaBackend::init().map_err(|e| e.to_string())?;
            // Its log lines would land on the console's screen.
            b.void_logs();
            Ok(b)
        })
        .as_ref()
        .map_err(Clone::clone)
}

impl LocalModel {
    /// Starts loading `cfg.path` on a new thread and returns at once.
    pub fn start(cfg: LocalConfig) -> LocalModel {
        let (tx, rx) = mpsc::channel::<Work>();
        let status = Arc::new(Mutex::new(Status::Loading));
        let shared = Arc::clone(&status);
        let timeout = cfg.timeout;
        let spawned = std::thread::Builder::new()
            .name("analyst-model".into())
            .spawn(move || serve(&cfg, &shared, &rx));
        if let Err(e) = spawned {
            set(
                &status,
                Status::Failed(format!("could not start the model thread: {e}")),
            );
        }
        LocalModel {
            jobs: Mutex::new(tx),
            status,
            timeout,
        }
    }

    pub fn status(&self) -> Status {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| Status::Failed("model status lost".into()))
    }

    /// Waits up to `limit` for the load to finish.
    pub fn wait_ready(&self, limit: Duration) -> Result<(), LocalError> {
        let end = Instant::now() + limit;
        loop {
            match self.status() {
                Status::Ready { .. } => return Ok(()),
                Status::Failed(why) => return Err(LocalError::NotLoaded(why)),
                Status::Loading if Instant::now() >= end => {
                    return Err(LocalError::NotLoaded("still loading".into()));
                }
                Status::Loading => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Queues a request: `user` is the user turn, `grammar` a GBNF with a `root` rule.
    pub fn ask(&self, user: String, grammar: String, choices: Vec<Choice>) -> Ticket {
        let (events, rx) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + self.timeout;
        let job = Job {
            user,
            grammar,
            choices,
            cancel: Arc::clone(&cancel),
            deadline,
            events,
        };
        let sent = self.jobs.lock().map(|j| j.send(Work::Answer(job)));
        if let Ok(Err(mpsc::SendError(Work::Answer(job)))) = sent {
            let _ = job.events.send(Event::Failed(LocalError::Gone));
        }
        Ticket {
            events: rx,
            cancel,
            deadline,
        }
    }

    /// llama.cpp's own decode speed on this model, measured as llama-bench measures it.
    pub fn raw_speed(
        &self,
        n_prompt: usize,
        n_gen: usize,
        reps: usize,
    ) -> Result<RawSpeed, LocalError> {
        let (reply, rx) = mpsc::channel();
        let work = Work::Raw {
            n_prompt,
            n_gen,
            reps,
            reply,
        };
        self.jobs
            .lock()
            .map_err(|_| LocalError::Gone)?
            .send(work)
            .map_err(|_| LocalError::Gone)?;
        rx.recv().map_err(|_| LocalError::Gone)?
    }
}

fn set(status: &Mutex<Status>, s: Status) {
    if let Ok(mut g) = status.lock() {
        *g = s;
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn serve(cfg: &LocalConfig, status: &Mutex<Status>, jobs: &mpsc::Receiver<Work>) {
    let started = Instant::now();
    let model = load_model(cfg);
    let runner = model
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|m| Runner::new(m, cfg));
    let mut runner = match runner {
        Ok(r) => r,
        Err(e) => {
            let why = e.to_string();
            set(status, Status::Failed(why.clone()));
            // Requests queued while it loaded learn why instead of waiting out their deadline.
            for work in jobs {
                let failed = LocalError::NotLoaded(why.clone());
                match work {
                    Work::Answer(job) => drop(job.events.send(Event::Failed(failed))),
                    Work::Raw { reply, .. } => drop(reply.send(Err(failed))),
                }
            }
            return;
        }
    };
    // Loading includes evaluating the system prompt once, so the first answer is as fast as
    // every other.
    let (name, system_tokens) = (runner.name.clone(), runner.system.len());
    if let Err(e) = runner.ensure_system() {
        set(status, Status::Failed(e.to_string()));
        return;
    }
    set(
        status,
        Status::Ready {
            name,
            load_ms: ms(started),
            system_tokens,
        },
    );
    for work in jobs {
        let job = match work {
            Work::Answer(job) => job,
            Work::Raw {
                n_prompt,
                n_gen,
                reps,
                reply,
            } => {
                let _ = reply.send(runner.raw_speed(n_prompt, n_gen, reps));
                continue;
            }
        };
        let events = job.events.clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.answer(&job)));
        let ev = match result {
            Ok(Ok((text, stats))) => Event::Done { text, stats },
            Ok(Err(e)) => Event::Failed(e),
            Err(_) => {
                // The context's state is unknown after a panic; start it again from scratch.
                runner.cached = 0;
                Event::Failed(LocalError::Model("the model thread panicked".into()))
            }
        };
        let _ = events.send(ev);
    }
}

/// Loads the GGUF at `cfg.path`.
fn load_model(cfg: &LocalConfig) -> Result<LlamaModel, LocalError> {
    let load_err = |why: String| LocalError::Load {
        path: cfg.path.clone(),
        why,
    };
    if !cfg.path.is_file() {
        return Err(load_err("no such file".into()));
    }
    if let Some(want) = cfg.sha256 {
        let found = super::model::sha256_file(&cfg.path).map_err(|e| load_err(e.to_string()))?;
        if found != want {
            return Err(load_err(format!(
                "SHA-256 {found} is not the expected {want}; delete it and run `stormwatch model pull`"
            )));
        }
    }
    let backend = backend().map_err(load_err)?;
    LlamaModel::load_from_file(backend, &cfg.path, &LlamaModelParams::default())
        .map_err(|e| load_err(e.to_string()))
}

struct Runner<'m> {
    model: &'m LlamaModel,
    ctx: llama_cpp_2::context::LlamaContext<'m>,
    template: LlamaChatTemplate,
    name: String,
    /// The system prompt as the chat template renders it, and its tokens.
    prefix: String,
    system: Vec<LlamaToken>,
    /// Leading tokens of `system` whose KV state the context holds.
    cached: usize,
    n_ctx: u32,
    n_batch: usize,
    max_tokens: usize,
}

impl<'m> Runner<'m> {
    fn new(model: &'m LlamaModel, cfg: &LocalConfig) -> Result<Runner<'m>, LocalError> {
        let load_err = |why: String| LocalError::Load {
            path: cfg.path.clone(),
            why,
        };
        let backend = backend().map_err(load_err)?;
        let template = model
            .chat_template(None)
            .map_err(|_| LocalError::NoTemplate(cfg.path.clone()))?;
        let n_ctx = cfg.context.min(model.n_ctx_train().max(512));
        let threads = i32::try_from(if cfg.threads == 0 {
            crate::cli::worker_threads(None)
        } else {
            cfg.threads
        })
        .unwrap_or(2);
        // The batch holds the whole context, so any prompt that fits is one decode.
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_ctx)
            .with_n_ubatch(n_ctx.min(512))
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            // A choice's two questions branch off the answer's prompt in the same cache.
            .with_n_seq_max(3)
            .with_kv_unified(true);
        let ctx = model
            .new_context(backend, params)
            .map_err(|e| load_err(e.to_string()))?;
        let system = [chat("system", SYSTEM_PROMPT)?];
        let prefix = model
            .apply_chat_template(&template, &system, false)
            .map_err(|e| LocalError::Model(format!("chat template: {e}")))?;
        let tokens = model.vocab().tokenize(prefix.as_bytes(), true, true);
        Ok(Runner {
            model,
            ctx,
            template,
            name: model_name(model, &cfg.path),
            prefix,
            system: tokens,
            cached: 0,
            n_ctx,
            n_batch: n_ctx as usize,
            max_tokens: cfg.max_tokens,
        })
    }

    /// Evaluates the system prompt unless the context holds it.
    fn ensure_system(&mut self) -> Result<(), LocalError> {
        if self.cached == self.system.len() {
            return Ok(());
        }
        self.ctx.clear_kv_cache();
        let tokens = self.system.clone();
        self.decode(&tokens, 0, None)?;
        self.cached = tokens.len();
        Ok(())
    }

    /// Decodes `tokens` at positions from `start`; logits only for the last one. Returns the
    /// batch index of the last token.
    fn decode(
        &mut self,
        tokens: &[LlamaToken],
        start: usize,
        job: Option<&Job>,
    ) -> Result<i32, LocalError> {
        let mut batch = LlamaBatch::new(self.n_batch, 1);
        let mut last = 0;
        for (c, chunk) in tokens.chunks(self.n_batch).enumerate() {
            if let Some(job) = job {
                check(job)?;
            }
            batch.clear();
            for (i, t) in chunk.iter().enumerate() {
                let pos = start + c * self.n_batch + i;
                let is_last = pos + 1 == start + tokens.len();
                batch
                    .add(*t, pos_i32(pos)?, &[0], is_last)
                    .map_err(|e| LocalError::Model(e.to_string()))?;
                if is_last {
                    last = i32::try_from(i).unwrap_or(0);
                }
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| LocalError::Model(e.to_string()))?;
        }
        Ok(last)
    }

    fn raw_speed(
        &mut self,
        n_prompt: usize,
        n_gen: usize,
        reps: usize,
    ) -> Result<RawSpeed, LocalError> {
        let n_prompt = n_prompt.clamp(1, self.n_ctx as usize / 2);
        let n_gen = n_gen.clamp(1, self.n_ctx as usize / 2);
        let n_vocab = self.model.n_vocab().max(2);
        // Like llama-bench: arbitrary tokens, the KV cache cleared before each run.
        let prompt: Vec<LlamaToken> = (0..n_prompt)
            .map(|i| LlamaToken::new(i32::try_from(i * 7919 % n_vocab as usize).unwrap_or(1)))
            .collect();
        self.cached = 0;
        let (mut pp, mut tg) = (Vec::new(), Vec::new());
        for rep in 0..=reps.max(1) {
            self.ctx.clear_kv_cache();
            let t = Instant::now();
            self.decode(&prompt, 0, None)?;
            let pp_s = t.elapsed().as_secs_f64();
            self.ctx.clear_kv_cache();
            let mut batch = LlamaBatch::new(1, 1);
            let t = Instant::now();
            for i in 0..n_gen {
                batch.clear();
                batch
                    .add(prompt[i % prompt.len()], pos_i32(i)?, &[0], true)
                    .map_err(|e| LocalError::Model(e.to_string()))?;
                self.ctx
                    .decode(&mut batch)
                    .map_err(|e| LocalError::Model(e.to_string()))?;
            }
            let tg_s = t.elapsed().as_secs_f64();
            // The first run warms caches and is not counted, as in llama-bench.
            if rep > 0 {
                pp.push(n_prompt as f64 / pp_s.max(1e-9));
                tg.push(n_gen as f64 / tg_s.max(1e-9));
            }
        }
        self.ctx.clear_kv_cache();
        let avg = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        Ok(RawSpeed {
            n_prompt,
            n_gen,
            prompt_tok_s: avg(&pp),
            gen_tok_s: avg(&tg),
        })
    }

    /// The chat of the system prompt and `user`, ready for the answer, as tokens; and how many
    /// leading tokens are the system prompt's, whose KV state is reused. Templates that render
    /// the system turn as a prefix of the whole chat (ChatML, Llama 3, Phi) reuse it; any other
    /// is evaluated in full every time.
    fn prompt_tokens(&mut self, user: &str) -> Result<(Vec<LlamaToken>, usize), LocalError> {
        let msgs = [chat("system", SYSTEM_PROMPT)?, chat("user", user)?];
        let full = self
            .model
            .apply_chat_template(&self.template, &msgs, true)
            .map_err(|e| LocalError::Model(format!("chat template: {e}")))?;
        let vocab = self.model.vocab();
        Ok(match full.strip_prefix(&self.prefix) {
            Some(rest) => {
                self.ensure_system()?;
                let mut t = self.system.clone();
                t.extend(vocab.tokenize(rest.as_bytes(), false, true));
                (t, self.system.len())
            }
            None => (vocab.tokenize(full.as_bytes(), true, true), 0),
        })
    }

    fn answer(&mut self, job: &Job) -> Result<(String, Stats), LocalError> {
        let started = Instant::now();
        check(job)?;
        let vocab = self.model.vocab();
        let (tokens, reused) = self.prompt_tokens(&job.user)?;
        let questions = job
            .choices
            .iter()
            .map(|c| self.question(c))
            .collect::<Result<Vec<_>, _>>()?;
        let branches = questions
            .iter()
            .map(|q| q.cells(&tokens))
            .max()
            .unwrap_or(0);
        if tokens.len() + branches + self.max_tokens > self.n_ctx as usize {
            return Err(LocalError::TooLong {
                tokens: tokens.len() + branches,
                context: self.n_ctx,
            });
        }
        let keep = u32::try_from(reused).unwrap_or(0);
        self.ctx
            .clear_kv_cache_seq(Some(0), Some(keep), None)
            .map_err(|e| LocalError::Model(e.to_string()))?;
        self.drop_branches()?;
        if reused == 0 {
            self.cached = 0;
        }
        let mut idx = self.decode(&tokens[reused..], reused, Some(job))?;
        let prompt_ms = ms(started);

        let grammar = LlamaSampler::grammar(self.model, &job.grammar, "root")
            .map_err(|e| LocalError::Model(format!("grammar: {e}")))?;
        // Greedy: the same evidence gives the same answer, which a cache per incident state
        // relies on.
        let mut sampler = GreedyUnderGrammar::new(grammar);
        let grammar_err = |e: String| LocalError::Model(format!("grammar: {e}"));
        let mut bytes: Vec<u8> = Vec::new();
        let mut sent = 0;
        let mut pos = tokens.len();
        let mut first_token_ms = 0.0;
        let mut generated = 0;
        let mut batch = LlamaBatch::new(1, 1);
        let mut chosen = vec![false; job.choices.len()];
        let mut emit = |bytes: &mut Vec<u8>, piece: &[u8]| {
            bytes.extend_from_slice(piece);
            let valid = match std::str::from_utf8(bytes) {
                Ok(s) => s.len(),
                Err(e) => e.valid_up_to(),
            };
            if valid > sent {
                let text = String::from_utf8_lossy(&bytes[sent..valid]).into_owned();
                let _ = job.events.send(Event::Token(text));
                sent = valid;
            }
        };
        while generated < self.max_tokens {
            check(job)?;
            let token = sampler
                .pick(self.ctx.get_logits_ith(idx))
                .ok_or_else(|| grammar_err("no token is allowed here".into()))?;
            if vocab.is_eog(token) {
                break;
            }
            sampler.accept(token).map_err(grammar_err)?;
            generated += 1;
            if generated == 1 {
                first_token_ms = ms(started);
            }
            emit(&mut bytes, &vocab.token_to_piece(token, false, None));
            // A complete object is the whole answer; the grammar allows nothing after it.
            if bytes.last() == Some(&b'}')
                && serde_json::from_slice::<serde_json::Value>(&bytes).is_ok()
            {
                break;
            }
            batch.clear();
            batch
                .add(token, pos_i32(pos)?, &[0], true)
                .map_err(|e| LocalError::Model(e.to_string()))?;
            self.ctx
                .decode(&mut batch)
                .map_err(|e| LocalError::Model(e.to_string()))?;
            pos += 1;
            idx = 0;
            let text = String::from_utf8_lossy(&bytes);
            let pending = job
                .choices
                .iter()
                .enumerate()
                .find_map(|(i, c)| Some((i, continuations(&text, c)?)))
                .filter(|(i, _)| !chosen[*i]);
            if let Some((i, options)) = pending {
                chosen[i] = true;
                let pick = self.choose(job, &questions[i], &tokens)?;
                let best = options
                    .get(pick)
                    .map(|o| vocab.tokenize(o.as_bytes(), false, false))
                    .ok_or_else(|| LocalError::Model("no option to choose from".into()))?;
                for t in &best {
                    sampler.accept(*t).map_err(grammar_err)?;
                    emit(&mut bytes, &vocab.token_to_piece(*t, false, None));
                }
                idx = self.decode(&best, pos, Some(job))?;
                pos += best.len();
                generated += best.len();
            }
        }
        let answer_ms = ms(started);
        let evaluated = tokens.len() - reused;
        let gen_ms = (answer_ms - prompt_ms).max(0.001);
        Ok((
            String::from_utf8_lossy(&bytes).into_owned(),
            Stats {
                prompt_tokens: tokens.len(),
                reused_tokens: reused,
                prompt_ms,
                first_token_ms,
                answer_ms,
                gen_tokens: generated,
                prompt_tok_s: evaluated as f64 / (prompt_ms / 1000.0).max(1e-6),
                gen_tok_s: generated as f64 / (gen_ms / 1000.0),
            },
        ))
    }
}

/// When `text` has just written `"key":` (with or without the space and opening quote), what
/// each option still needs to complete `"key": "option"`.
fn continuations(text: &str, c: &Choice) -> Option<Vec<String>> {
    let marker = format!("\"{}\":", c.key);
    let tail = &text[text.rfind(&marker)? + marker.len()..];
    let prefix = match tail {
        "" => " \"",
        " " => "\"",
        " \"" | "\"" => "",
        _ => return None,
    };
    Some(c.options.iter().map(|o| format!("{prefix}{o}\"")).collect())
}

/// A [`Choice`]'s question as tokens, made before the answer so its length is checked up front.
struct Question {
    /// The chat with `without_facts` as the user turn.
    bare: Vec<LlamaToken>,
    cue: Vec<LlamaToken>,
    /// Each option as it follows the cue (after a space).
    options: Vec<Vec<LlamaToken>>,
}

impl Question {
    /// KV cells the question takes beside the answer to `prompt`: the part of the bare chat that
    /// differs from the whole one (the rest shares its cells), and on each of the two branches
    /// the cue and the longest option.
    fn cells(&self, prompt: &[LlamaToken]) -> usize {
        let longest = self.options.iter().map(Vec::len).max().unwrap_or(0);
        (self.bare.len() - shared_prefix(prompt, &self.bare)) + 2 * (self.cue.len() + longest)
    }
}

/// How many leading tokens of `bare` it shares with `prompt`, leaving at least its last one
/// to decode (its logits are read).
fn shared_prefix(prompt: &[LlamaToken], bare: &[LlamaToken]) -> usize {
    let same = prompt.iter().zip(bare).take_while(|(a, b)| a == b).count();
    same.min(bare.len().saturating_sub(1))
}

/// log p(token) under `logits`.
fn log_prob(logits: &[f32], token: LlamaToken) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|l| f64::from(l - max).exp()).sum();
    let l = usize::try_from(token.0)
        .ok()
        .and_then(|i| logits.get(i))
        .copied()
        .unwrap_or(f32::NEG_INFINITY);
    f64::from(l - max) - sum.ln()
}

impl Runner<'_> {
    fn question(&mut self, c: &Choice) -> Result<Question, LocalError> {
        let vocab = self.model.vocab();
        let (bare, _) = self.prompt_tokens(&c.without_facts)?;
        Ok(Question {
            bare,
            cue: vocab.tokenize(c.cue.as_bytes(), false, true),
            options: c
                .options
                .iter()
                .map(|o| vocab.tokenize(format!(" {o}").as_bytes(), false, false))
                .collect(),
        })
    }

    /// Which of `q`'s options the model picks (see [`Choice`]), asked beside the answer whose
    /// prompt is `prompt`: the answer's own KV state (sequence 0) is left as it was.
    fn choose(
        &mut self,
        job: &Job,
        q: &Question,
        prompt: &[LlamaToken],
    ) -> Result<usize, LocalError> {
        let Question { bare, cue, options } = q;
        if cue.is_empty() || prompt.is_empty() || bare.is_empty() {
            return Err(LocalError::Model("an empty choice question".into()));
        }
        let shared = shared_prefix(prompt, bare);
        let kv = |e: llama_cpp_2::context::kv_cache::KvCacheConversionError| {
            LocalError::Model(e.to_string())
        };
        let at = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.ctx
            .copy_kv_cache_seq(0, SEQ_WITH_FACTS, Some(0), Some(at(prompt.len())))
            .map_err(kv)?;
        self.ctx
            .copy_kv_cache_seq(0, SEQ_WITHOUT_FACTS, Some(0), Some(at(shared)))
            .map_err(kv)?;
        // Both questions in one batch: the cue after the whole prompt, and the rest of the
        // bare prompt plus the cue after what it shares with the whole one.
        let with_q: Vec<(LlamaToken, usize)> = cue
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, prompt.len() + i))
            .collect();
        let without_q: Vec<(LlamaToken, usize)> = bare[shared..]
            .iter()
            .chain(cue)
            .enumerate()
            .map(|(i, t)| (*t, shared + i))
            .collect();
        check(job)?;
        let heads = self.branch(&[
            Branch {
                seq: SEQ_WITH_FACTS,
                tokens: &with_q,
                next: &[],
            },
            Branch {
                seq: SEQ_WITHOUT_FACTS,
                tokens: &without_q,
                next: &[],
            },
        ])?;
        let (with_from, without_from) = (prompt.len() + cue.len(), bare.len() + cue.len());
        let mut best: Option<(f64, usize)> = None;
        for (k, t) in options.iter().enumerate() {
            check(job)?;
            let Some(&first) = t.first() else { continue };
            let mut with = log_prob(&heads[0].last, first);
            let mut without = log_prob(&heads[1].last, first);
            if t.len() > 1 {
                let rest = &t[..t.len() - 1];
                let at_from = |from: usize| -> Vec<(LlamaToken, usize)> {
                    rest.iter()
                        .enumerate()
                        .map(|(i, x)| (*x, from + i))
                        .collect()
                };
                let (w, wo) = (at_from(with_from), at_from(without_from));
                let out = self.branch(&[
                    Branch {
                        seq: SEQ_WITH_FACTS,
                        tokens: &w,
                        next: &t[1..],
                    },
                    Branch {
                        seq: SEQ_WITHOUT_FACTS,
                        tokens: &wo,
                        next: &t[1..],
                    },
                ])?;
                with += out[0].next.iter().sum::<f64>();
                without += out[1].next.iter().sum::<f64>();
                for (seq, from) in [
                    (SEQ_WITH_FACTS, with_from),
                    (SEQ_WITHOUT_FACTS, without_from),
                ] {
                    self.ctx
                        .clear_kv_cache_seq(Some(seq.unsigned_abs()), Some(at(from)), None)
                        .map_err(kv)?;
                }
            }
            let score = with + EVIDENCE_WEIGHT * (with - without);
            tracing::debug!(option = k, with, without, score, "analyst choice");
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, k));
            }
        }
        self.drop_branches()?;
        best.map(|(_, k)| k)
            .ok_or_else(|| LocalError::Model("no option to choose from".into()))
    }

    /// Frees the cells of a choice's questions (a cancelled one leaves them behind).
    fn drop_branches(&mut self) -> Result<(), LocalError> {
        for seq in [SEQ_WITH_FACTS, SEQ_WITHOUT_FACTS] {
            self.ctx
                .clear_kv_cache_seq(Some(seq.unsigned_abs()), None, None)
                .map_err(|e| LocalError::Model(e.to_string()))?;
        }
        Ok(())
    }

    /// Decodes each branch's tokens (at their positions, on their sequence) in one batch, and
    /// returns per branch the log-probability of each of its `next` tokens after the token at
    /// the same index, and the logits after its last token.
    fn branch(&mut self, branches: &[Branch<'_>]) -> Result<Vec<Branched>, LocalError> {
        let n: usize = branches.iter().map(|b| b.tokens.len()).sum();
        let mut batch = LlamaBatch::new(n.max(1), 1);
        for b in branches {
            for (k, (t, p)) in b.tokens.iter().enumerate() {
                // Logits only where they are read: each has the vocabulary's width, and the
                // output layer is a large share of a small model's work per token.
                let wanted = k < b.next.len() || k + 1 == b.tokens.len();
                batch
                    .add(*t, pos_i32(*p)?, &[b.seq], wanted)
                    .map_err(|e| LocalError::Model(e.to_string()))?;
            }
        }
        self.ctx
            .decode(&mut batch)
            .map_err(|e| LocalError::Model(e.to_string()))?;
        let mut out = Vec::with_capacity(branches.len());
        let mut i = 0;
        for b in branches {
            let mut lps = Vec::with_capacity(b.next.len());
            for k in 0..b.tokens.len() {
                if let Some(next) = b.next.get(k) {
                    lps.push(log_prob(self.ctx.get_logits_ith(pos_i32(i + k)?), *next));
                }
            }
            i += b.tokens.len();
            let last = match i.checked_sub(1) {
                Some(l) if !b.tokens.is_empty() => self.ctx.get_logits_ith(pos_i32(l)?).to_vec(),
                _ => Vec::new(),
            };
            out.push(Branched { next: lps, last });
        }
        Ok(out)
    }
}

/// What decoding a [`Branch`] gave: the log-probability of each of its `next` tokens, and the
/// logits after its last token.
struct Branched {
    next: Vec<f64>,
    last: Vec<f32>,
}

/// Tokens decoded on one KV sequence, with their positions, and the tokens whose probability
/// after each is wanted.
struct Branch<'a> {
    seq: i32,
    tokens: &'a [(LlamaToken, usize)],
    next: &'a [LlamaToken],
}

fn check(job: &Job) -> Result<(), LocalError> {
    if job.cancel.load(Ordering::Relaxed) {
        return Err(LocalError::Cancelled);
    }
    if Instant::now() >= job.deadline {
        return Err(LocalError::TimedOut);
    }
    Ok(())
}

fn pos_i32(pos: usize) -> Result<i32, LocalError> {
    i32::try_from(pos).map_err(|_| LocalError::Model("position overflow".into()))
}

fn chat(role: &str, content: &str) -> Result<LlamaChatMessage, LocalError> {
    LlamaChatMessage::new(role.into(), content.into())
        .map_err(|e| LocalError::Model(format!("chat message: {e}")))
}

/// The model's own name from its metadata, else its file name.
fn model_name(model: &LlamaModel, path: &Path) -> String {
    model
        .meta_val_str("general.name")
        .ok()
        .filter(|n| !n.trim().is_empty())
        .map(|n| crate::safe_text::SafeText::new(n.trim()).into_string())
        .unwrap_or_else(|| {
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "local model".into())
        })
}

/// A GBNF grammar for answers of `schema`, with `confidence` bounded to 0..1 (llama.cpp's
/// conversion leaves JSON-schema numbers unbounded: SmolLM2 answered 9) and the JSON on one
/// line (its conversion allows newlines and indentation, which a greedy model fills with
/// tokens that cost time and say nothing).
pub fn grammar(schema: &str) -> Result<String, LocalError> {
    let gbnf = llama_cpp_2::json_schema_to_grammar(schema)
        .map_err(|e| LocalError::Model(format!("grammar from schema: {e}")))?;
    let bounded = r#"confidence-kv ::= "\"confidence\"" space ":" space ("0" ("." [0-9] [0-9]?)? | "1" (".0")?) space"#;
    let mut out = String::new();
    let mut replaced = false;
    for line in gbnf.lines() {
        if line.starts_with("confidence-kv ::=") {
            out.push_str(bounded);
            replaced = true;
        } else if line.starts_with("space ::=") {
            out.push_str(r#"space ::= " "?"#);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !replaced && schema.contains("\"confidence\"") {
        return Err(LocalError::Model(
            "the grammar has no confidence rule to bound".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_completes_whatever_the_model_wrote_of_its_key() {
        let c = Choice {
            key: "entity".into(),
            options: vec!["i-0abc".into(), "10.0.0.1".into()],
            cue: "The incident is about".into(),
            without_facts: String::new(),
        };
        let cont = |text: &str| continuations(text, &c);
        assert_eq!(
            cont(r#"{"summary": "x", "entity":"#).unwrap(),
            [r#" "i-0abc""#, r#" "10.0.0.1""#]
        );
        assert_eq!(cont(r#"{"entity": "#).unwrap()[0], r#""i-0abc""#);
        assert_eq!(cont(r#"{"entity": ""#).unwrap()[0], r#"i-0abc""#);
        assert_eq!(cont(r#"{"entity":""#).unwrap()[0], r#"i-0abc""#);
        // Not yet at the key, already past it, or the key inside a string value.
        assert!(cont(r#"{"summary": "#).is_none());
        assert!(cont(r#"{"entity": "i-0"#).is_none());
        assert!(cont(r#"{"summary": "the \"entity\": "#).is_none());
    }

    #[test]
    fn a_bare_prompt_always_keeps_a_token_to_decode() {
        let t = |v: &[i32]| v.iter().map(|&i| LlamaToken::new(i)).collect::<Vec<_>>();
        assert_eq!(shared_prefix(&t(&[1, 2, 3, 4]), &t(&[1, 2, 9])), 2);
        // Wholly shared: its last token is still decoded, for the logits after it.
        assert_eq!(shared_prefix(&t(&[1, 2, 3, 4]), &t(&[1, 2, 3])), 2);
        assert_eq!(shared_prefix(&t(&[1]), &t(&[])), 0);
    }

    #[test]
    fn log_probabilities_are_normalised() {
        let logits = [0.0f32, 1.0, 2.0];
        let total: f64 = (0..3)
            .map(|i| log_prob(&logits, LlamaToken::new(i)).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        assert!(log_prob(&logits, LlamaToken::new(2)) > log_prob(&logits, LlamaToken::new(0)));
        assert_eq!(log_prob(&logits, LlamaToken::new(7)), f64::NEG_INFINITY);
    }

    #[test]
    fn the_grammar_bounds_confidence_and_keeps_answers_on_one_line() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "entity": {"type": "string", "enum": ["i-0abc", "orders-api"]},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "required": ["entity", "confidence"],
            "additionalProperties": false,
        });
        let g = grammar(&schema.to_string()).unwrap();
        assert!(
            g.contains(r#"("0" ("." [0-9] [0-9]?)? | "1" (".0")?)"#),
            "{g}"
        );
        assert!(g.contains("space ::= \" \"?\n"), "{g}");
        assert!(!g.contains(r#""\n""#), "{g}");
    }
}
