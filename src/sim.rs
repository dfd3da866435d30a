//! Demo simulator: a small, fully deterministic AWS account that writes log lines in the real AWS
//! formats, as they would arrive in CloudWatch Logs.
//!
//! After a quiet baseline, [`generate`] injects one incident of each [`IncidentKind`] and one benign
//! burst of each [`DistractorKind`], and returns the lines together with the [`GroundTruth`] that
//! stormwatch's evaluation scores against. The detection engine only ever sees [`SimEvent`]s.
//!
//! Everything is derived from [`SimConfig::seed`] through [`Rng`], and the only floating-point
//! operations used are the correctly rounded IEEE ones (`+ - * /`, `sqrt`, `floor`/`round`), so a seed
//! yields the same scenario on every platform and toolchain.

use crate::action::catalog::ActionKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use crate::rng::Rng;
use crate::rng::det_sin;
use crate::timefmt::{MONTHS, iso};

const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

/// Points above its pre-onset level at which a filling disk is plainly visible: a disk wobbles by
/// about one point and the nightly job adds at most four.
pub const DISK_EVIDENCE_RISE: f64 = 5.0;

/// Log group of the instances' `/var/log/secure` (sshd, sudo), one stream per instance id.
pub const GROUP_SECURE: &str = "/ec2/var/log/secure";
/// Log group of the instances' `/var/log/messages` (systemd, cron, app, health agent).
pub const GROUP_MESSAGES: &str = "/ec2/var/log/messages";
/// Log group holding S3 server access logs, one stream per bucket.
pub const GROUP_S3: &str = "s3-access-logs";
/// Log group of the VPC flow logs (default v2 format), one stream per ENI.
pub const GROUP_VPC: &str = "/vpc/flow-logs";

/// Region the account normally works in.
const HOME_REGION: &str = "us-east-1";
/// Regions the leaked key is used from: none of them is ever used by the account itself.
const ATTACKER_REGIONS: [&str; 4] = ["eu-west-3", "ap-southeast-1", "sa-east-1", "ap-northeast-2"];
/// Regions an attacker sweeps with DescribeInstances.
const ALL_REGIONS: [&str; 16] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "sa-east-1",
];

// ------------------------------------------------------------------------------------------------
// Public API
// ------------------------------------------------------------------------------------------------

/// Parameters of one simulated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seed of every random choice: ids, names, sizes, timing and the order of the incidents.
    pub seed: u64,
    /// Length of the quiet period before the first distractor or incident, in hours (capped at 7 days).
    pub baseline_hours: f64,
    /// Scenario start, epoch milliseconds (UTC).
    pub start_ms: i64,
    /// Lets each incident take a [`Variant`] where its kind alone does not decide the fix. Off for
    /// the demo and the detection evaluation, whose scenarios stay exactly as they were.
    pub variants: bool,
}

impl Default for SimConfig {
    /// Seed 1, a 6 h baseline, starting 2026-11-23T00:00:00Z.
    fn default() -> Self {
        SimConfig {
            seed: 1,
            baseline_hours: 6.0,
            start_ms: 1_795_392_000_000,
            variants: false,
        }
    }
}

/// One log event as CloudWatch Logs holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimEvent {
    /// When CloudWatch Logs has the event (its `ingestionTime`); [`Scenario::events`] is sorted by it.
    pub arrival_ms: i64,
    /// The event's own time (CloudWatch `timestamp`).
    pub ts_ms: i64,
    /// Log group name.
    pub group: String,
    /// Log stream name.
    pub stream: String,
    /// The raw line, exactly as AWS or the host writes it.
    pub message: String,
}

/// The kinds of incident a scenario injects, each exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// Password guessing against sshd, with a port scan in the flow logs.
    SshBruteForce,
    /// A Lambda function timing out because its database is unreachable.
    LambdaTimeoutCascade,
    /// An instance's root volume filling up to 100 %.
    DiskFilling,
    /// A human's access key used from a new IP, region and user agent for recon and S3 theft.
    LeakedAccessKey,
}

impl IncidentKind {
    /// Every kind, in declaration order.
    pub const ALL: [IncidentKind; 4] = [
        IncidentKind::SshBruteForce,
        IncidentKind::LambdaTimeoutCascade,
        IncidentKind::DiskFilling,
        IncidentKind::LeakedAccessKey,
    ];

    /// Short human label for the console.
    pub fn label(self) -> &'static str {
        match self {
            IncidentKind::SshBruteForce => "SSH brute force",
            IncidentKind::LambdaTimeoutCascade => "Lambda timeout cascade",
            IncidentKind::DiskFilling => "EC2 disk filling up",
            IncidentKind::LeakedAccessKey => "Leaked access key",
        }
    }
}

/// How an incident differs from its kind's usual story, in ways that change the right fix.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// One attacker address; the database down; a runaway process holding deleted files; a key
    /// in the wrong hands.
    #[default]
    Usual,
    /// The brute force comes from a crowd of addresses: blocking one does not help.
    ManySources,
    /// The filling disk belongs to an Auto Scaling group's instance, full of unrotated logs: the
    /// guard forbids stop and a reboot frees nothing; the cleanup runbook does.
    AutoScaled,
    /// The Lambda cascade follows a bad deploy, not a database outage: throttling only hides it.
    BadDeploy,
}

/// Benign bursts that look unusual but must not be flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistractorKind {
    /// ci-deployer ships new code to a function, whose environments cold-start.
    Deploy,
    /// A report job pins one instance's CPU for a few minutes.
    NightlyCron,
    /// The Auto Scaling group launches a new instance that starts logging.
    AutoscalingStep,
    /// The backup role uploads hundreds of objects a minute to the backups bucket.
    BackupPutBurst,
}

impl DistractorKind {
    /// Every kind, in declaration order.
    pub const ALL: [DistractorKind; 4] = [
        DistractorKind::Deploy,
        DistractorKind::NightlyCron,
        DistractorKind::AutoscalingStep,
        DistractorKind::BackupPutBurst,
    ];
}

/// Ground truth of one injected incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthIncident {
    /// What happened.
    pub kind: IncidentKind,
    /// `ts_ms` of the first anomalous event.
    pub onset_ms: i64,
    /// `ts_ms` of the last anomalous event.
    pub end_ms: i64,
    /// When a watcher could first have known: the first anomalous event (CloudTrail: once
    /// delivered); for a filling disk, the first report [`DISK_EVIDENCE_RISE`] points above its
    /// level before onset, which is beyond the fleet's normal wobble and the nightly job's bump.
    #[serde(default)]
    pub evidence_ms: i64,
    /// SSH: attacker IP; Lambda: function name; disk: instance id; leaked key: access key id.
    pub main_entity: String,
    /// Every entity involved (instances, ENIs, IPs, functions, key, user ARN, buckets...).
    pub entities: Vec<String>,
    /// Catalog id of the remediation that fixes it.
    pub remediation: String,
    /// One human sentence describing it.
    pub detail: String,
    #[serde(default)]
    pub variant: Variant,
    /// The Auto Scaling group managing the incident's instance, as `DescribeAutoScalingInstances`
    /// would report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling_group: Option<String>,
    /// When the incident's function last had its code changed, as `GetFunction`'s
    /// `LastModified` would report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_modified_ms: Option<i64>,
}

/// Ground truth of one benign burst.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distractor {
    /// What happened.
    pub kind: DistractorKind,
    /// `ts_ms` of its first event.
    pub start_ms: i64,
    /// `ts_ms` of its last event.
    pub end_ms: i64,
    /// Entities involved.
    pub entities: Vec<String>,
    /// One human sentence describing it.
    pub detail: String,
}

/// A principal that appears consistently in CloudTrail, S3 access logs and SSH logins.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CastMember {
    /// IAM user or role name.
    pub name: String,
    /// The ARN CloudTrail and S3 show for it.
    pub arn: String,
    /// CloudTrail `principalId`.
    pub principal_id: String,
    /// Access key id (`AKIA...` for users, `ASIA...` for the role session).
    pub access_key: String,
    /// Public IP it normally works from.
    pub home_ip: String,
}

/// Everything the evaluation needs to score a detector on a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Seed the scenario came from.
    pub seed: u64,
    /// Scenario start (epoch ms).
    pub start_ms: i64,
    /// End of the quiet baseline (epoch ms).
    pub baseline_end_ms: i64,
    /// Scenario end: no event has `ts_ms` at or after it.
    pub end_ms: i64,
    /// The 12-digit account id.
    pub account_id: String,
    /// The account's home region.
    pub region: String,
    /// Users and roles of the account.
    pub cast: Vec<CastMember>,
    /// Injected incidents, sorted by onset.
    pub incidents: Vec<TruthIncident>,
    /// Benign bursts, sorted by start.
    pub distractors: Vec<Distractor>,
}

/// A generated scenario: the log events and the truth behind them.
pub struct Scenario {
    /// Every log line, sorted by `arrival_ms` (ties keep generation order).
    pub events: Vec<SimEvent>,
    /// What really happened.
    pub truth: GroundTruth,
}

/// Log group of a Lambda function.
pub fn lambda_group(function: &str) -> String {
    format!("/aws/lambda/{function}")
}

/// Log group CloudTrail delivers to for an account.
pub fn cloudtrail_group(account_id: &str) -> String {
    format!("aws-cloudtrail-logs-{account_id}")
}

// ------------------------------------------------------------------------------------------------
// Time formatting (UTC, no chrono)
// ------------------------------------------------------------------------------------------------

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Broken-down UTC time.
struct Civil {
    year: i64,
    month: usize,
    day: u32,
    hour: i64,
    min: i64,
    sec: i64,
    milli: i64,
    weekday: usize,
}

/// Epoch ms to UTC fields.
fn civil(ms: i64) -> Civil {
    let (year, month, day, hour, min, sec, milli) = crate::timefmt::parts(ms);
    Civil {
        year,
        month: month as usize,
        day,
        hour: i64::from(hour),
        min: i64::from(min),
        sec: i64::from(sec),
        milli: i64::from(milli),
        // 1970-01-01 was a Thursday.
        weekday: (ms.div_euclid(DAY) + 4).rem_euclid(7) as usize,
    }
}

/// Lambda application-line time: `2026-11-23T10:01:02.123Z`.
pub fn fmt_iso8601_ms(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.min, c.sec, c.milli
    )
}

/// RFC 3164 syslog time: `Nov 23 10:01:02`, day space-padded (`Nov  3`).
pub fn fmt_syslog(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[c.month - 1],
        c.day,
        c.hour,
        c.min,
        c.sec
    )
}

/// S3 server access log time: `[23/Nov/2026:10:01:02 +0000]`.
pub fn fmt_s3_time(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "[{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000]",
        c.day,
        MONTHS[c.month - 1],
        c.year,
        c.hour,
        c.min,
        c.sec
    )
}

/// RFC 2822 time as cloud-init prints it: `Mon, 23 Nov 2026 10:01:02 +0000`.
fn fmt_rfc2822(ms: i64) -> String {
    let c = civil(ms);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[c.weekday],
        c.day,
        MONTHS[c.month - 1],
        c.year,
        c.hour,
        c.min,
        c.sec
    )
}

/// Date prefix of a Lambda log stream: `2026/11/23`.
fn fmt_stream_date(ms: i64) -> String {
    let c = civil(ms);
    format!("{:04}/{:02}/{:02}", c.year, c.month, c.day)
}

// ------------------------------------------------------------------------------------------------
// Identifiers
// ------------------------------------------------------------------------------------------------

const HEX: &[u8] = b"0123456789abcdef";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn chars(rng: &mut Rng, alphabet: &[u8], n: usize) -> String {
    (0..n).map(|_| char::from(*rng.pick(alphabet))).collect()
}

fn hex(rng: &mut Rng, n: usize) -> String {
    chars(rng, HEX, n)
}

fn digits(rng: &mut Rng, n: usize) -> String {
    chars(rng, b"0123456789", n)
}

/// Random UUID in version-4 layout, as Lambda request ids and CloudTrail event ids are.
fn uuid4(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        8 + (b >> 62),
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

/// A public unicast IPv4 address outside every private, shared, loopback, link-local,
/// documentation, benchmarking and multicast range.
fn public_ip(rng: &mut Rng) -> String {
    loop {
        let a = rng.range(1, 224);
        let b = rng.range(0, 256);
        let c = rng.range(0, 256);
        let d = rng.range(1, 255);
        let reserved = a == 10
            || a == 127
            || (a == 172 && (16..32).contains(&b))
            || (a == 192 && b == 168)
            || (a == 100 && (64..128).contains(&b))
            || (a == 169 && b == 254)
            || (a == 192 && b == 0 && (c == 0 || c == 2))
            || (a == 198 && (b == 18 || b == 19))
            || (a == 198 && b == 51 && c == 100)
            || (a == 203 && b == 0 && c == 113);
        if !reserved {
            return format!("{a}.{b}.{c}.{d}");
        }
    }
}

// ------------------------------------------------------------------------------------------------
// The simulated account
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Instance {
    id: String,
    ip: String,
    host: String,
    eni: String,
    disk_gb: f64,
    disk_base: f64,
    disk_walk: f64,
    cpu_base: f64,
    /// From this time on the instance logs its regular background.
    active_from: i64,
    health_offset: i64,
    app_pid: u32,
    logind_pid: u32,
    next_pid: u32,
    session: u32,
    // Per-minute overrides set by incidents and distractors before the background runs.
    disk_force: Option<f64>,
    disk_bump: f64,
    cpu_force: Option<f64>,
    health_span: Option<usize>,
}

impl Instance {
    fn new(rng: &mut Rng, taken: &[String], active_from: i64) -> Instance {
        let ip = loop {
            let ip = format!("10.0.{}.{}", rng.range(1, 4), rng.range(4, 251));
            if !taken.contains(&ip) {
                break ip;
            }
        };
        let host = format!("ip-{}", ip.replace('.', "-"));
        Instance {
            id: format!("i-0{}", hex(rng, 16)),
            eni: format!("eni-0{}", hex(rng, 16)),
            ip,
            host,
            disk_gb: *rng.pick(&[8.0, 16.0, 20.0, 30.0, 50.0]),
            disk_base: rng.uniform(25.0, 65.0),
            disk_walk: 0.0,
            cpu_base: rng.uniform(8.0, 28.0),
            active_from,
            health_offset: rng.between(0, 59) * SEC + rng.between(0, 999),
            app_pid: rng.range(1500, 2500) as u32,
            logind_pid: rng.range(600, 900) as u32,
            next_pid: rng.range(3000, 9000) as u32,
            session: rng.range(1, 40) as u32,
            disk_force: None,
            disk_bump: 0.0,
            cpu_force: None,
            health_span: None,
        }
    }

    fn pid(&mut self, rng: &mut Rng) -> u32 {
        self.next_pid += rng.range(1, 40) as u32;
        if self.next_pid > 32_000 {
            self.next_pid = 1_000 + self.next_pid % 1_000;
        }
        self.next_pid
    }

    fn line(&self, ts: i64, tag: &str, msg: &str) -> String {
        format!("{} {} {}: {}", fmt_syslog(ts), self.host, tag, msg)
    }

    fn active(&self, t: i64) -> bool {
        self.active_from <= t
    }
}

#[derive(Debug, Clone)]
struct Env {
    stream: String,
    cold: bool,
}

#[derive(Debug, Clone)]
struct Func {
    name: &'static str,
    mem: u32,
    timeout_s: u32,
    base_rate: f64,
    phase: f64,
    base_ms: f64,
    base_mem_used: u32,
    envs: Vec<Env>,
    // Per-minute overrides set by incidents and distractors.
    rate_mult: f64,
    fail_p: f64,
    /// Failures come from broken code rather than the database.
    bad_code: bool,
    fail_span: Option<usize>,
    cold_span: Option<usize>,
}

fn new_env(rng: &mut Rng, t: i64, cold: bool) -> Env {
    Env {
        stream: format!("{}/[$LATEST]{}", fmt_stream_date(t), hex(rng, 32)),
        cold,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Human,
    Ci,
    Backup,
}

#[derive(Debug, Clone)]
struct Person {
    m: CastMember,
    role: Role,
    ua: String,
    s3_ua: String,
    fingerprint: String,
    /// For the role session: the IAM role behind it.
    role_id: String,
}

/// Account-wide constants, kept apart from the mutable fleet so helpers can borrow both.
struct Account {
    id: String,
    company: &'static str,
    owner: String,
    buckets: [String; 3],
    runtime_arn: String,
    db_host: String,
    db_ip: String,
    app_role: String,
}

const ASSETS: usize = 0;
const BACKUPS: usize = 1;
const EXPORTS: usize = 2;

const COMPANIES: [&str; 8] = [
    "acmeshop",
    "northwind",
    "bluepeak",
    "lumenly",
    "cobaltpay",
    "tinyforge",
    "greenleaf",
    "orbitdata",
];
const FUNC_POOL: [&str; 6] = [
    "orders-api",
    "image-resize",
    "payments-webhook",
    "notify-email",
    "inventory-sync",
    "auth-token",
];
const HUMAN_POOL: [&str; 6] = ["alice", "carol", "dave", "erin", "frank", "grace"];
const SCAN_USERS: [&str; 6] = ["root", "admin", "ubuntu", "test", "oracle", "postgres"];
const BRUTE_USERS: [&str; 16] = [
    "root", "admin", "ubuntu", "test", "oracle", "postgres", "user", "git", "ftpuser", "deploy",
    "pi", "guest", "support", "mysql", "jenkins", "hadoop",
];
const ATTACKER_UAS: [&str; 3] = [
    "python-requests/2.31.0",
    "Boto3/1.26.0 Python/3.8.10 Linux/4.15.0",
    "curl/7.81.0",
];

// ------------------------------------------------------------------------------------------------
// Output collection
// ------------------------------------------------------------------------------------------------

struct Out {
    ev: Vec<(i64, u64, SimEvent)>,
    end_ms: i64,
    /// Observed [first, last] `ts_ms` of each incident / distractor.
    spans: Vec<Option<(i64, i64)>>,
    /// Free counters per incident / distractor, for the ground-truth sentences.
    counts: Vec<[u64; 4]>,
    /// Earliest arrival of evidence per incident where it differs from the first event's time.
    evidence: Vec<Option<i64>>,
}

impl Out {
    fn push(&mut self, ts: i64, lag: i64, group: &str, stream: &str, message: String) -> bool {
        // Lines past the end would belong to a scenario nobody scores.
        if ts >= self.end_ms {
            return false;
        }
        let seq = self.ev.len() as u64;
        self.ev.push((
            ts + lag,
            seq,
            SimEvent {
                arrival_ms: ts + lag,
                ts_ms: ts,
                group: group.to_string(),
                stream: stream.to_string(),
                message,
            },
        ));
        true
    }

    fn note(&mut self, span: usize, ts: i64) {
        if let Some(s) = self.spans.get_mut(span) {
            *s = Some(match *s {
                None => (ts, ts),
                Some((a, b)) => (a.min(ts), b.max(ts)),
            });
        }
    }

    fn evidence(&mut self, span: usize, arrival_ms: i64) {
        if let Some(e) = self.evidence.get_mut(span) {
            *e = Some(e.map_or(arrival_ms, |x| x.min(arrival_ms)));
        }
    }

    fn count(&mut self, span: usize, slot: usize, n: u64) {
        if let Some(c) = self.counts.get_mut(span).and_then(|c| c.get_mut(slot)) {
            *c += n;
        }
    }

    fn get_count(&self, span: usize, slot: usize) -> u64 {
        self.counts
            .get(span)
            .and_then(|c| c.get(slot))
            .copied()
            .unwrap_or(0)
    }
}

/// Delivery lags of one minute. Drawing them per stream and minute, not per line, keeps the
/// lines of one stream in order, as an agent flushing batches does.
struct Lags {
    secure: Vec<i64>,
    messages: Vec<i64>,
    flow: Vec<i64>,
    lambda: Vec<i64>,
    s3: [i64; 3],
    ct: i64,
}

impl Lags {
    fn draw(rng: &mut Rng, n_inst: usize, n_func: usize) -> Lags {
        Lags {
            secure: (0..n_inst).map(|_| rng.between(SEC, 3 * SEC)).collect(),
            messages: (0..n_inst).map(|_| rng.between(SEC, 3 * SEC)).collect(),
            flow: (0..n_inst)
                .map(|_| rng.between(60 * SEC, 120 * SEC))
                .collect(),
            lambda: (0..n_func).map(|_| rng.between(SEC, 2 * SEC)).collect(),
            s3: [
                rng.between(2 * MIN, 6 * MIN),
                rng.between(2 * MIN, 6 * MIN),
                rng.between(2 * MIN, 6 * MIN),
            ],
            ct: rng.between(3 * MIN, 7 * MIN),
        }
    }
}

/// One VPC flow log record in the default v2 format.
struct Flow<'a> {
    src: &'a str,
    dst: &'a str,
    sport: u64,
    dport: u64,
    packets: u64,
    bytes: u64,
    accept: bool,
}

fn flow_line(acct: &str, eni: &str, t0: i64, f: &Flow) -> String {
    let start = t0.div_euclid(SEC);
    format!(
        "2 {acct} {eni} {} {} {} {} 6 {} {} {start} {} {} OK",
        f.src,
        f.dst,
        f.sport,
        f.dport,
        f.packets,
        f.bytes,
        start + 60,
        if f.accept { "ACCEPT" } else { "REJECT" }
    )
}

/// One S3 server access log request.
struct S3Req<'a> {
    ts: i64,
    bucket: usize,
    ip: &'a str,
    requester: &'a str,
    op: &'a str,
    key: &'a str,
    status: u16,
    error: &'a str,
    bytes_sent: u64,
    size: u64,
    ua: &'a str,
}

fn s3_line(rng: &mut Rng, acct: &Account, r: &S3Req) -> String {
    let bucket = &acct.buckets[r.bucket];
    let method = match r.op {
        "REST.PUT.OBJECT" => "PUT",
        "REST.HEAD.OBJECT" => "HEAD",
        "REST.DELETE.OBJECT" => "DELETE",
        _ => "GET",
    };
    let (key, uri) = if r.op == "REST.GET.BUCKET" {
        (
            "-".to_string(),
            format!("{method} /{bucket}?list-type=2&prefix={} HTTP/1.1", r.key),
        )
    } else {
        (
            r.key.to_string(),
            format!("{method} /{bucket}/{} HTTP/1.1", r.key),
        )
    };
    let bytes = if r.bytes_sent == 0 {
        "-".to_string()
    } else {
        r.bytes_sent.to_string()
    };
    let size = if r.size == 0 {
        "-".to_string()
    } else {
        r.size.to_string()
    };
    let total = rng.range(8, 60) + r.bytes_sent / 400_000;
    let turn = rng.range(4, 30).min(total);
    format!(
        "{} {bucket} {} {} {} {} {} {key} \"{uri}\" {} {} {bytes} {size} {total} {turn} \"-\" \"{}\" - {}= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader {bucket}.s3.{HOME_REGION}.amazonaws.com TLSv1.2 - -",
        acct.owner,
        fmt_s3_time(r.ts),
        r.ip,
        r.requester,
        chars(rng, UPPER_ALNUM, 16),
        r.op,
        r.status,
        r.error,
        r.ua,
        chars(rng, BASE64, 75),
    )
}

/// CloudTrail `userIdentity`; a struct rather than `json!` so fields keep AWS's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserIdentity {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_context: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invoked_by: Option<String>,
}

/// One CloudTrail record, fields in the order CloudTrail writes them.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CtRecord<'a> {
    event_version: &'a str,
    user_identity: UserIdentity,
    event_time: String,
    event_source: &'a str,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: &'a str,
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
    request_parameters: Value,
    response_elements: Value,
    #[serde(rename = "requestID")]
    request_id: String,
    #[serde(rename = "eventID")]
    event_id: String,
    read_only: bool,
    event_type: &'a str,
    management_event: bool,
    recipient_account_id: &'a str,
    event_category: &'a str,
}

/// What a CloudTrail call did, apart from who made it.
struct Call<'a> {
    source: &'a str,
    name: &'a str,
    region: &'a str,
    read_only: bool,
    params: Value,
    response: Value,
    error: Option<(&'a str, String)>,
}

impl<'a> Call<'a> {
    fn read(source: &'a str, name: &'a str, params: Value) -> Call<'a> {
        Call {
            source,
            name,
            region: HOME_REGION,
            read_only: true,
            params,
            response: Value::Null,
            error: None,
        }
    }
}

fn identity(acct: &Account, p: &Person, ts: i64) -> UserIdentity {
    if p.role == Role::Backup {
        let role_arn = format!("arn:aws:iam::{}:role/{}", acct.id, p.m.name);
        UserIdentity {
            kind: "AssumedRole",
            principal_id: Some(p.m.principal_id.clone()),
            arn: Some(p.m.arn.clone()),
            account_id: Some(acct.id.clone()),
            access_key_id: Some(p.m.access_key.clone()),
            user_name: None,
            session_context: Some(json!({
                "sessionIssuer": {"type": "Role", "principalId": p.role_id, "arn": role_arn,
                    "accountId": acct.id, "userName": p.m.name},
                "attributes": {"creationDate": iso(ts - (ts.rem_euclid(6 * HOUR))),
                    "mfaAuthenticated": "false"},
                "ec2RoleDelivery": "2.0"
            })),
            invoked_by: None,
        }
    } else {
        UserIdentity {
            kind: "IAMUser",
            principal_id: Some(p.m.principal_id.clone()),
            arn: Some(p.m.arn.clone()),
            account_id: Some(acct.id.clone()),
            access_key_id: Some(p.m.access_key.clone()),
            user_name: Some(p.m.name.clone()),
            session_context: None,
            invoked_by: None,
        }
    }
}

fn ct_line(
    rng: &mut Rng,
    acct: &Account,
    who: UserIdentity,
    ip: &str,
    ua: &str,
    ts: i64,
    c: Call,
) -> String {
    let rec = CtRecord {
        event_version: "1.09",
        user_identity: who,
        event_time: iso(ts),
        event_source: c.source,
        event_name: c.name,
        aws_region: c.region,
        source_ip_address: ip,
        user_agent: ua,
        error_code: c.error.as_ref().map(|e| e.0),
        error_message: c.error.as_ref().map(|e| e.1.clone()),
        request_parameters: c.params,
        response_elements: c.response,
        request_id: uuid4(rng),
        event_id: uuid4(rng),
        read_only: c.read_only,
        event_type: "AwsApiCall",
        management_event: true,
        recipient_account_id: &acct.id,
        event_category: "Management",
    };
    // Serializing plain strings, bools and Values cannot fail; an empty line would be the only outcome.
    serde_json::to_string(&rec).unwrap_or_default()
}

fn denied_message(arn: &str, action: &str, resource: &str) -> String {
    format!(
        "User: {arn} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action"
    )
}

// ------------------------------------------------------------------------------------------------
// Scenario plan
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Inc(IncidentKind),
    Dis(DistractorKind),
}

#[derive(Debug, Clone)]
enum Data {
    Ssh {
        ip: String,
        /// More attacking addresses ([`Variant::ManySources`]); empty for one attacker.
        crowd: Vec<String>,
        targets: Vec<usize>,
        lo: u64,
        hi: u64,
    },
    Lambda {
        main: usize,
        second: Option<usize>,
        fail_p: f64,
        mult: f64,
        /// The code deployed at onset is broken ([`Variant::BadDeploy`]).
        bad_deploy: bool,
    },
    Disk {
        inst: usize,
        base: f64,
        linear: f64,
        auto_scaling_group: Option<String>,
    },
    Key {
        victim: usize,
        ip: String,
        region: &'static str,
        ua: &'static str,
        buckets: Vec<usize>,
        taken: Vec<String>,
    },
    Deploy {
        func: usize,
    },
    Cron {
        inst: usize,
        bump: f64,
        pid: u32,
    },
    Autoscale {
        inst: usize,
    },
    Backup {
        rate: u64,
        seq: u64,
    },
}

#[derive(Debug, Clone)]
struct Item {
    what: What,
    start: i64,
    end: i64,
    data: Data,
}

/// The whole simulation state.
struct Sim {
    rng: Rng,
    acct: Account,
    inst: Vec<Instance>,
    funcs: Vec<Func>,
    people: Vec<Person>,
    out: Out,
    ct_group: String,
    ct_stream: String,
}

/// Generates a complete scenario for `cfg`: the log events sorted by arrival, and the ground truth.
pub fn generate(cfg: &SimConfig) -> Scenario {
    let mut rng = Rng::new(cfg.seed);
    let start = cfg.start_ms;
    let hours = if cfg.baseline_hours.is_finite() {
        cfg.baseline_hours.clamp(0.0, 168.0)
    } else {
        0.0
    };
    let baseline_end = start + (hours * HOUR as f64).round() as i64;

    // --- the account ---
    let company = *rng.pick(&COMPANIES);
    let acct_id = format!("{}{}", rng.range(1, 10), digits(&mut rng, 11));
    let acct = Account {
        owner: hex(&mut rng, 64),
        buckets: [
            format!("{company}-assets"),
            format!("{company}-backups"),
            format!("{company}-data-exports"),
        ],
        runtime_arn: format!(
            "arn:aws:lambda:{HOME_REGION}::runtime:{}",
            hex(&mut rng, 64)
        ),
        db_host: format!(
            "{company}-db.cluster-c{}.{HOME_REGION}.rds.amazonaws.com",
            chars(&mut rng, LOWER_ALNUM, 11)
        ),
        db_ip: format!("10.0.3.{}", rng.range(10, 250)),
        app_role: format!("{company}-app-server"),
        id: acct_id,
        company,
    };

    let n_inst = rng.range(3, 6) as usize;
    let mut inst: Vec<Instance> = Vec::new();
    for _ in 0..n_inst {
        let taken: Vec<String> = inst.iter().map(|i| i.ip.clone()).collect();
        inst.push(Instance::new(&mut rng, &taken, start));
    }

    let mut pool = FUNC_POOL;
    rng.shuffle(&mut pool);
    let n_func = rng.range(3, 5) as usize;
    let funcs: Vec<Func> = pool[..n_func]
        .iter()
        .map(|&name| {
            let mem = *rng.pick(&[128u32, 256, 512, 1024]);
            let n_env = rng.range(2, 5);
            Func {
                name,
                mem,
                timeout_s: *rng.pick(&[3u32, 6, 10, 15]),
                base_rate: rng.uniform(0.3, 0.5),
                phase: rng.uniform(0.0, std::f64::consts::TAU),
                base_ms: rng.uniform(15.0, 260.0),
                base_mem_used: (f64::from(mem) * rng.uniform(0.2, 0.45)) as u32 + 40,
                envs: (0..n_env)
                    .map(|_| new_env(&mut rng, start, false))
                    .collect(),
                rate_mult: 1.0,
                fail_p: 0.0,
                bad_code: false,
                fail_span: None,
                cold_span: None,
            }
        })
        .collect();

    let people = make_cast(&mut rng, &acct, &inst[0]);

    // --- the timeline: gap, incident, gap, incident...; one distractor inside each gap ---
    let mut inc_order = IncidentKind::ALL;
    rng.shuffle(&mut inc_order);
    let mut dis_order = DistractorKind::ALL;
    rng.shuffle(&mut dis_order);
    let mut cursor = start + (baseline_end - start + MIN - 1).div_euclid(MIN) * MIN;
    let mut items: Vec<Item> = Vec::new();
    for (&ik, &dk) in inc_order.iter().zip(dis_order.iter()) {
        let gap = rng.between(25, 50) * MIN;
        let dur = match dk {
            DistractorKind::Deploy | DistractorKind::AutoscalingStep => 10 * MIN,
            _ => rng.between(5, 15) * MIN,
        };
        // Five quiet minutes on each side keep benign bursts clear of the incident windows.
        let slack = (gap - 10 * MIN - dur).max(0) / MIN;
        let ds = cursor + 5 * MIN + rng.between(0, slack) * MIN;
        items.push(Item {
            what: What::Dis(dk),
            start: ds,
            end: ds + dur,
            data: Data::Backup { rate: 0, seq: 0 },
        });
        let is = cursor + gap;
        let idur = rng.between(8, 25) * MIN;
        items.push(Item {
            what: What::Inc(ik),
            start: is,
            end: is + idur,
            data: Data::Backup { rate: 0, seq: 0 },
        });
        cursor = is + idur;
    }
    let end_ms = cursor + 30 * MIN;

    let ct_group = cloudtrail_group(&acct.id);
    let ct_stream = format!("{}_CloudTrail_{HOME_REGION}", acct.id);
    let n_items = items.len();
    let mut sim = Sim {
        rng,
        acct,
        inst,
        funcs,
        people,
        out: Out {
            ev: Vec::with_capacity(300_000),
            end_ms,
            spans: vec![None; n_items],
            counts: vec![[0; 4]; n_items],
            evidence: vec![None; n_items],
        },
        ct_group,
        ct_stream,
    };
    for item in &mut items {
        item.data = sim.plan(item.what, item.start);
    }
    if cfg.variants {
        // A stream of its own, so turning variants on changes nothing else in the scenario.
        let mut vrng = Rng::new(cfg.seed ^ 0x7661_7269_616e_7473);
        for item in &mut items {
            sim.vary(&mut vrng, &mut item.data);
        }
    }

    let mut t0 = start;
    while t0 < end_ms {
        sim.minute(t0, &mut items);
        t0 += MIN;
    }

    let truth = sim.truth(cfg, baseline_end, end_ms, &items);
    let mut ev = std::mem::take(&mut sim.out.ev);
    ev.sort_unstable_by_key(|e| (e.0, e.1));
    Scenario {
        events: ev.into_iter().map(|e| e.2).collect(),
        truth,
    }
}

fn make_cast(rng: &mut Rng, acct: &Account, backup_host: &Instance) -> Vec<Person> {
    let mut humans: Vec<&str> = vec!["bob"];
    let mut pool = HUMAN_POOL;
    rng.shuffle(&mut pool);
    let extra = rng.range(1, 3) as usize;
    humans.extend_from_slice(&pool[..extra]);
    rng.shuffle(&mut humans);
    let mut people = Vec::new();
    let user = |rng: &mut Rng, name: &str, role: Role, ua: String, s3_ua: String| Person {
        m: CastMember {
            name: name.to_string(),
            arn: format!("arn:aws:iam::{}:user/{name}", acct.id),
            principal_id: format!("AIDA{}", chars(rng, UPPER_ALNUM, 17)),
            access_key: format!("AKIA{}", chars(rng, UPPER_ALNUM, 16)),
            home_ip: public_ip(rng),
        },
        role,
        ua,
        s3_ua,
        fingerprint: chars(rng, BASE64, 43),
        role_id: String::new(),
    };
    for name in humans {
        let v = rng.range(10, 40);
        let ua = match rng.range(0, 4) {
            0 => format!("aws-cli/2.15.{v} Python/3.11.6 Darwin/23.4.0 exe/x86_64 prompt/off"),
            1 => format!(
                "aws-cli/2.17.{v} Python/3.11.9 Linux/6.5.0-35-generic exe/x86_64.ubuntu.22"
            ),
            2 => "AWS Internal".to_string(),
            _ => format!(
                "Boto3/1.34.{v} md/Botocore#1.34.{v} ua/2.0 os/macos#23.4.0 md/arch#arm64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.{v}"
            ),
        };
        let s3_ua = if ua == "AWS Internal" {
            "S3Console/0.4".to_string()
        } else {
            ua.clone()
        };
        people.push(user(rng, name, Role::Human, ua, s3_ua));
    }
    let ci_ua =
        "aws-cli/2.15.30 Python/3.11.8 Linux/5.15.0-1057-azure exe/x86_64.ubuntu.22 prompt/off"
            .to_string();
    people.push(user(rng, "ci-deployer", Role::Ci, ci_ua.clone(), ci_ua));
    let role_id = format!("AROA{}", chars(rng, UPPER_ALNUM, 17));
    let bua = "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.84-99.169.amzn2023.x86_64 md/arch#x86_64 lang/python#3.9.16 Botocore/1.34.69".to_string();
    people.push(Person {
        m: CastMember {
            name: "backup-agent".to_string(),
            arn: format!(
                "arn:aws:sts::{}:assumed-role/backup-agent/{}",
                acct.id, backup_host.id
            ),
            principal_id: format!("{role_id}:{}", backup_host.id),
            access_key: format!("ASIA{}", chars(rng, UPPER_ALNUM, 16)),
            home_ip: public_ip(rng),
        },
        role: Role::Backup,
        ua: bua.clone(),
        s3_ua: bua,
        fingerprint: String::new(),
        role_id,
    });
    people
}

impl Sim {
    fn humans(&self) -> Vec<usize> {
        (0..self.people.len())
            .filter(|&i| self.people[i].role == Role::Human)
            .collect()
    }

    fn person(&self, role: Role) -> usize {
        self.people.iter().position(|p| p.role == role).unwrap_or(0)
    }

    /// Chooses the seed-dependent details of one incident or distractor.
    fn plan(&mut self, what: What, start: i64) -> Data {
        let rng = &mut self.rng;
        // Incidents and distractors target the original fleet, never the autoscaled newcomer.
        let fleet = self.inst.len();
        match what {
            What::Inc(IncidentKind::SshBruteForce) => {
                let first = rng.range(0, fleet as u64) as usize;
                let mut targets = vec![first];
                if rng.chance(0.3) {
                    targets.push((first + 1) % fleet);
                }
                let lo = rng.range(20, 50);
                Data::Ssh {
                    ip: public_ip(rng),
                    crowd: Vec::new(),
                    targets,
                    lo,
                    hi: rng.range(lo + 10, 91),
                }
            }
            What::Inc(IncidentKind::LambdaTimeoutCascade) => {
                let main = rng.range(0, self.funcs.len() as u64) as usize;
                let second = rng.chance(0.5).then(|| {
                    (main + 1 + rng.range(0, self.funcs.len() as u64 - 1) as usize)
                        % self.funcs.len()
                });
                Data::Lambda {
                    main,
                    second,
                    fail_p: rng.uniform(0.45, 0.85),
                    mult: rng.uniform(1.5, 3.0),
                    bad_deploy: false,
                }
            }
            What::Inc(IncidentKind::DiskFilling) => {
                let inst = rng.range(0, fleet as u64) as usize;
                Data::Disk {
                    inst,
                    base: self.inst[inst].disk_base,
                    linear: rng.uniform(0.0, 1.0),
                    auto_scaling_group: None,
                }
            }
            What::Inc(IncidentKind::LeakedAccessKey) => {
                let humans: Vec<usize> = (0..self.people.len())
                    .filter(|&i| self.people[i].role == Role::Human)
                    .collect();
                let victim = *rng.pick(&humans);
                let region = *rng.pick(&ATTACKER_REGIONS);
                let ua = *rng.pick(&ATTACKER_UAS);
                let mut buckets = vec![EXPORTS];
                if rng.chance(0.4) {
                    buckets.push(ASSETS);
                }
                Data::Key {
                    victim,
                    ip: public_ip(rng),
                    region,
                    ua,
                    buckets,
                    taken: Vec::new(),
                }
            }
            What::Dis(DistractorKind::Deploy) => Data::Deploy {
                func: rng.range(0, self.funcs.len() as u64) as usize,
            },
            What::Dis(DistractorKind::NightlyCron) => Data::Cron {
                inst: rng.range(0, fleet as u64) as usize,
                bump: rng.uniform(2.0, 4.0),
                pid: rng.range(20_000, 30_000) as u32,
            },
            What::Dis(DistractorKind::AutoscalingStep) => {
                let taken: Vec<String> = self.inst.iter().map(|i| i.ip.clone()).collect();
                // Logging starts once boot is done; the distractor writes the boot itself.
                let new = Instance::new(rng, &taken, start + 4 * MIN);
                self.inst.push(new);
                Data::Autoscale {
                    inst: self.inst.len() - 1,
                }
            }
            What::Dis(DistractorKind::BackupPutBurst) => Data::Backup {
                rate: rng.range(200, 801),
                seq: 0,
            },
        }
    }

    /// Turns about half of the incidents into their [`Variant`].
    fn vary(&mut self, rng: &mut Rng, data: &mut Data) {
        if !rng.chance(0.5) {
            return;
        }
        match data {
            Data::Ssh { crowd, .. } => {
                let n = rng.range(12, 30);
                crowd.extend((0..n).map(|_| public_ip(rng)));
            }
            Data::Lambda { bad_deploy, .. } => *bad_deploy = true,
            Data::Disk {
                auto_scaling_group, ..
            } => *auto_scaling_group = Some(format!("{}-web-asg", self.acct.company)),
            _ => {}
        }
    }

    fn minute(&mut self, t0: i64, items: &mut [Item]) {
        for i in &mut self.inst {
            i.disk_force = None;
            i.disk_bump = 0.0;
            i.cpu_force = None;
            i.health_span = None;
        }
        for f in &mut self.funcs {
            f.rate_mult = 1.0;
            f.fail_p = 0.0;
            f.bad_code = false;
            f.fail_span = None;
            f.cold_span = None;
        }
        let lags = Lags::draw(&mut self.rng, self.inst.len(), self.funcs.len());
        let mut flows: Vec<Vec<String>> = vec![Vec::new(); self.inst.len()];

        for (idx, item) in items.iter_mut().enumerate() {
            if t0 >= item.start && t0 < item.end {
                self.scenario_minute(t0, idx, item, &lags, &mut flows);
            }
        }
        self.background_hosts(t0, &lags, &mut flows);
        self.background_lambda(t0, &lags);
        self.background_s3(t0, &lags);
        self.background_cloudtrail(t0, &lags);

        for (i, recs) in flows.into_iter().enumerate() {
            let eni = self.inst[i].eni.clone();
            for r in recs {
                self.out.push(t0, lags.flow[i], GROUP_VPC, &eni, r);
            }
        }
    }

    // --------------------------------------------------------------------------------------------
    // Background
    // --------------------------------------------------------------------------------------------

    fn background_hosts(&mut self, t0: i64, lags: &Lags, flows: &mut [Vec<String>]) {
        let Sim {
            rng,
            acct,
            inst,
            people,
            out,
            ..
        } = self;
        let humans: Vec<usize> = (0..people.len())
            .filter(|&i| people[i].role == Role::Human)
            .collect();
        let active: Vec<usize> = (0..inst.len()).filter(|&i| inst[i].active(t0)).collect();
        for &k in &active {
            let h = &mut inst[k];
            let (sl, ml) = (lags.secure[k], lags.messages[k]);

            // Health agent, every minute: the engine reads these exact shapes.
            h.disk_walk = (h.disk_walk + rng.uniform(-0.06, 0.06)).clamp(-1.0, 1.0);
            let used = h
                .disk_force
                .unwrap_or(h.disk_base + h.disk_walk + h.disk_bump)
                .clamp(0.0, 100.0)
                .round();
            let cpu = h
                .cpu_force
                .unwrap_or((h.cpu_base + rng.uniform(-7.0, 7.0)).clamp(5.0, 35.0))
                .round();
            let avail = h.disk_gb * (100.0 - used) / 100.0;
            let load = cpu / 100.0 * 2.0 * rng.uniform(0.8, 1.2);
            let ht = t0 + h.health_offset;
            let tag = "node-health[911]";
            let mut lines = vec![
                h.line(ht, tag, &format!("disk / used={used}% avail={avail:.1}G")),
                h.line(ht, tag, &format!("cpu util={cpu}% load1={load:.2}")),
            ];
            if used >= 90.0 {
                lines.push(h.line(
                    ht,
                    tag,
                    &format!("WARNING disk / used={used}% above threshold 90%"),
                ));
            }
            if cpu >= 90.0 {
                lines.push(h.line(
                    ht,
                    tag,
                    &format!("WARNING cpu util={cpu}% above threshold 90%"),
                ));
            }
            let (id, span) = (h.id.clone(), h.health_span);
            for l in lines {
                out.push(ht, ml, GROUP_MESSAGES, &id, l);
            }
            if let Some(s) = span {
                out.note(s, ht);
            }

            // Application access log lines.
            for _ in 0..rng.poisson(3.0) {
                let ts = t0 + rng.between(0, MIN - 1);
                let (path, status) = match rng.range(0, 10) {
                    0..=3 => ("/api/orders".to_string(), "200"),
                    4 | 5 => (format!("/api/orders/{}", rng.range(10_000, 99_999)), "200"),
                    6 => ("/api/cart".to_string(), *rng.pick(&["200", "201"])),
                    7 => (format!("/api/products?page={}", rng.range(1, 20)), "200"),
                    8 => ("/healthz".to_string(), "200"),
                    _ => (format!("/api/orders/{}", rng.range(10_000, 99_999)), "404"),
                };
                let method = if status == "201" { "POST" } else { "GET" };
                let ms = rng.range(2, 90);
                let l = h.line(
                    ts,
                    &format!("app[{}]", h.app_pid),
                    &format!("INFO {method} {path} {status} {ms}ms"),
                );
                out.push(ts, ml, GROUP_MESSAGES, &id, l);
            }

            // Cron and housekeeping.
            let minute_of_hour = (t0 / MIN).rem_euclid(60);
            if minute_of_hour % 10 == (h.health_offset / SEC) % 10 {
                let pid = h.pid(rng);
                let ts = t0 + rng.between(0, 900);
                let l = h.line(
                    ts,
                    &format!("CROND[{pid}]"),
                    "(root) CMD (/usr/local/bin/rotate-logs.sh)",
                );
                out.push(ts, ml, GROUP_MESSAGES, &id, l);
            }
            if minute_of_hour == 1 {
                let pid = h.pid(rng);
                let ts = t0 + rng.between(0, 900);
                let l = h.line(
                    ts,
                    &format!("CROND[{pid}]"),
                    "(root) CMD (run-parts /etc/cron.hourly)",
                );
                out.push(ts, ml, GROUP_MESSAGES, &id, l);
            }
            if rng.chance(0.012) {
                let pid = h.pid(rng);
                let ts = t0 + rng.between(0, 50 * SEC);
                for (dt, tag, msg) in [
                    (0, "systemd[1]".to_string(), "Starting dnf makecache..."),
                    (2 * SEC, format!("dnf[{pid}]"), "Metadata cache created."),
                    (
                        2 * SEC + 40,
                        "systemd[1]".to_string(),
                        "dnf-makecache.service: Deactivated successfully.",
                    ),
                    (
                        2 * SEC + 41,
                        "systemd[1]".to_string(),
                        "Finished dnf makecache.",
                    ),
                ] {
                    let l = h.line(ts + dt, &tag, msg);
                    out.push(ts + dt, ml, GROUP_MESSAGES, &id, l);
                }
            }

            // Humans log in a few times per hour per instance.
            if rng.chance(0.05) {
                let p = &people[*rng.pick(&humans)];
                let u = &p.m.name;
                let pid = h.pid(rng);
                let port = rng.range(49_152, 65_536);
                let ts = t0 + rng.between(0, 55 * SEC);
                h.session += 1;
                let sess = h.session;
                let sshd = format!("sshd[{pid}]");
                let logind = format!("systemd-logind[{}]", h.logind_pid);
                let lines = [
                    (
                        ts,
                        GROUP_SECURE,
                        sshd.clone(),
                        format!(
                            "Accepted publickey for {u} from {} port {port} ssh2: RSA SHA256:{}",
                            p.m.home_ip, p.fingerprint
                        ),
                    ),
                    (
                        ts + 12,
                        GROUP_SECURE,
                        sshd.clone(),
                        format!("pam_unix(sshd:session): session opened for user {u} by (uid=0)"),
                    ),
                    (
                        ts + 15,
                        GROUP_MESSAGES,
                        logind.clone(),
                        format!("New session {sess} of user {u}."),
                    ),
                    (
                        ts + 20,
                        GROUP_MESSAGES,
                        "systemd[1]".to_string(),
                        format!("Started Session {sess} of user {u}."),
                    ),
                ];
                for (t, g, tag, msg) in lines {
                    let l = h.line(t, &tag, &msg);
                    out.push(t, if g == GROUP_SECURE { sl } else { ml }, g, &id, l);
                }
                if rng.chance(0.4) {
                    let t = ts + rng.between(30 * SEC, 180 * SEC);
                    let cmd = *rng.pick(&[
                        "/usr/bin/systemctl restart app",
                        "/usr/bin/journalctl -u app --since today",
                        "/usr/bin/dnf check-update",
                        "/usr/bin/tail -n 200 /var/log/messages",
                    ]);
                    let l = h.line(
                        t,
                        "sudo",
                        &format!(
                            "{u} : TTY=pts/{} ; PWD=/home/{u} ; USER=root ; COMMAND={cmd}",
                            sess % 4
                        ),
                    );
                    out.push(t, sl, GROUP_SECURE, &id, l);
                }
                let close = ts + rng.between(2 * MIN, 25 * MIN);
                let l = h.line(
                    close,
                    &sshd,
                    &format!("pam_unix(sshd:session): session closed for user {u}"),
                );
                out.push(close, sl, GROUP_SECURE, &id, l);
                let l = h.line(
                    close + 5,
                    &logind,
                    &format!("Session {sess} logged out. Waiting for processes to exit."),
                );
                out.push(close + 5, ml, GROUP_MESSAGES, &id, l);
                let l = h.line(close + 9, &logind, &format!("Removed session {sess}."));
                out.push(close + 9, ml, GROUP_MESSAGES, &id, l);
                let packets = rng.range(20, 400);
                flows[k].push(flow_line(
                    &acct.id,
                    &h.eni,
                    t0,
                    &Flow {
                        src: &p.m.home_ip,
                        dst: &h.ip,
                        sport: port,
                        dport: 22,
                        packets,
                        bytes: packets * rng.range(80, 300),
                        accept: true,
                    },
                ));
            }

            // Web clients.
            for _ in 0..rng.poisson(2.0) {
                let src = public_ip(rng);
                let packets = rng.range(5, 40);
                flows[k].push(flow_line(
                    &acct.id,
                    &h.eni,
                    t0,
                    &Flow {
                        src: &src,
                        dst: &h.ip,
                        sport: rng.range(1024, 65_536),
                        dport: if rng.chance(0.8) { 443 } else { 80 },
                        packets,
                        bytes: packets * rng.range(60, 1400),
                        accept: true,
                    },
                ));
            }
            if rng.chance(0.006) {
                let s = t0.div_euclid(SEC);
                flows[k].push(format!(
                    "2 {} {} - - - - - - - {s} {} - NODATA",
                    acct.id,
                    h.eni,
                    s + 60
                ));
            }
        }
        if active.is_empty() {
            return;
        }

        // Internet scanners: REJECTs on odd ports across the account.
        for _ in 0..rng.poisson(3.0) {
            let k = *rng.pick(&active);
            let src = public_ip(rng);
            for _ in 0..rng.range(1, 4) {
                let packets = rng.range(1, 3);
                flows[k].push(flow_line(
                    &acct.id,
                    &inst[k].eni,
                    t0,
                    &Flow {
                        src: &src,
                        dst: &inst[k].ip,
                        sport: rng.range(1024, 65_536),
                        dport: *rng.pick(&[
                            23, 3389, 445, 8080, 1433, 3306, 5900, 6379, 9200, 2375, 25, 8443,
                        ]),
                        packets,
                        bytes: packets * 40,
                        accept: false,
                    },
                ));
            }
        }

        // Internet SSH noise: a few password guesses every few minutes is normal on port 22.
        for _ in 0..rng.poisson(0.35) {
            let k = *rng.pick(&active);
            let src = public_ip(rng);
            let user = *rng.pick(&SCAN_USERS);
            let tries = rng.range(1, 4);
            let ts = t0 + rng.between(0, 50 * SEC);
            ssh_failures(
                rng,
                out,
                &mut inst[k],
                ts,
                lags.secure[k],
                &src,
                user,
                tries,
            );
            let packets = rng.range(10, 30);
            flows[k].push(flow_line(
                &acct.id,
                &inst[k].eni,
                t0,
                &Flow {
                    src: &src,
                    dst: &inst[k].ip,
                    sport: rng.range(1024, 65_536),
                    dport: 22,
                    packets,
                    bytes: packets * rng.range(60, 200),
                    accept: true,
                },
            ));
        }
    }

    fn background_lambda(&mut self, t0: i64, lags: &Lags) {
        let Sim {
            rng,
            acct,
            funcs,
            out,
            ..
        } = self;
        for (fi, f) in funcs.iter_mut().enumerate() {
            let day_pos = std::f64::consts::TAU * (t0.rem_euclid(DAY) as f64 / DAY as f64);
            let rate =
                (f.base_rate * (1.0 + 0.35 * det_sin(day_pos + f.phase)) * rng.uniform(0.9, 1.1))
                    .clamp(0.3, 1.5)
                    * f.rate_mult;
            if rng.chance(0.004) && !f.envs.is_empty() {
                // Lambda recycles execution environments every few hours.
                let k = rng.range(0, f.envs.len() as u64) as usize;
                f.envs[k] = new_env(rng, t0, true);
            }
            let group = lambda_group(f.name);
            let lag = lags.lambda[fi];
            for _ in 0..rng.poisson(rate * 60.0) {
                let ts = t0 + rng.between(0, MIN - 1);
                invocation(rng, out, acct, f, &group, lag, ts);
            }
        }
    }

    fn background_s3(&mut self, t0: i64, lags: &Lags) {
        let humans = self.humans();
        let ci = self.person(Role::Ci);
        let backup = self.person(Role::Backup);
        let Sim {
            rng,
            acct,
            inst,
            people,
            out,
            ..
        } = self;
        let date = fmt_stream_date(t0);
        let fleet: Vec<usize> = (0..inst.len()).filter(|&i| inst[i].active(t0)).collect();
        for b in 0..3 {
            let mean = if b == BACKUPS { 1.5 } else { 2.5 };
            for _ in 0..rng.poisson(mean) {
                let ts = t0 + rng.between(0, MIN - 1);
                let roll = rng.f64();
                let app_arn;
                let (ip, requester, ua) = if roll < 0.4 {
                    let p = &people[*rng.pick(&humans)];
                    (p.m.home_ip.as_str(), p.m.arn.as_str(), p.s3_ua.as_str())
                } else if roll < 0.5 && b != EXPORTS {
                    let p = &people[if b == BACKUPS { backup } else { ci }];
                    (p.m.home_ip.as_str(), p.m.arn.as_str(), p.s3_ua.as_str())
                } else {
                    let h = &inst[*rng.pick(&fleet)];
                    app_arn = format!(
                        "arn:aws:sts::{}:assumed-role/{}/{}",
                        acct.id, acct.app_role, h.id
                    );
                    (
                        h.ip.as_str(),
                        app_arn.as_str(),
                        "aws-sdk-js/3.614.0 ua/2.0 os/linux#6.1.112-124.190.amzn2023.x86_64 lang/js md/nodejs#20.15.1 api/s3#3.614.0",
                    )
                };
                let key = match b {
                    ASSETS => format!("img/products/{}.jpg", rng.range(1000, 9999)),
                    BACKUPS => format!("db/{date}/pg_dump.part-{:04}.gz", rng.range(0, 400)),
                    _ => format!(
                        "reports/{}/{}-{}.csv",
                        &date[..7].replace('/', "-"),
                        *rng.pick(&["orders", "customers", "refunds", "inventory"]),
                        rng.range(1, 31)
                    ),
                };
                let size = rng.range(2_000, 4_000_000);
                let (op, status, err, sent, osize) = match rng.range(0, 20) {
                    0..=10 => ("REST.GET.OBJECT", 200, "-", size, size),
                    11 => ("REST.GET.OBJECT", 404, "NoSuchKey", rng.range(280, 320), 0),
                    12..=16 => ("REST.PUT.OBJECT", 200, "-", 0, size),
                    17 | 18 => ("REST.HEAD.OBJECT", 200, "-", 0, size),
                    _ => ("REST.GET.BUCKET", 200, "-", rng.range(800, 20_000), 0),
                };
                let key = if op == "REST.GET.BUCKET" {
                    key.split('/').next().unwrap_or("").to_string() + "/"
                } else {
                    key
                };
                let l = s3_line(
                    rng,
                    acct,
                    &S3Req {
                        ts,
                        bucket: b,
                        ip,
                        requester,
                        op,
                        key: &key,
                        status,
                        error: err,
                        bytes_sent: sent,
                        size: osize,
                        ua,
                    },
                );
                out.push(ts, lags.s3[b], GROUP_S3, &acct.buckets[b], l);
            }
        }
    }

    fn background_cloudtrail(&mut self, t0: i64, lags: &Lags) {
        let n = self.people.len();
        for pi in 0..n {
            let role = self.people[pi].role;
            let p_call = match role {
                Role::Human => 4.0 / 60.0,
                Role::Ci => 5.0 / 60.0,
                Role::Backup => 1.0 / 60.0,
            };
            if self.rng.chance(p_call) {
                let ts = t0 + self.rng.between(0, MIN - 1);
                let call = self.routine_call(pi);
                self.ct_as(pi, ts, lags.ct, call);
            }
            if role == Role::Human && self.people[pi].m.name == "bob" && self.rng.chance(1.5 / 60.0)
            {
                let ts = t0 + self.rng.between(0, MIN - 1);
                let arn = self.people[pi].m.arn.clone();
                let call = if self.rng.chance(0.5) {
                    Call {
                        error: Some((
                            "AccessDenied",
                            denied_message(
                                &arn,
                                "iam:ListUsers",
                                &format!("arn:aws:iam::{}:user/", self.acct.id),
                            ),
                        )),
                        ..Call::read("iam.amazonaws.com", "ListUsers", Value::Null)
                    }
                } else {
                    let target = self.inst[0].id.clone();
                    let region = HOME_REGION;
                    Call {
                        source: "ec2.amazonaws.com",
                        name: "StopInstances",
                        region,
                        read_only: false,
                        params: json!({"instancesSet": {"items": [{"instanceId": target}]}, "force": false}),
                        response: Value::Null,
                        error: Some((
                            "Client.UnauthorizedOperation",
                            format!(
                                "You are not authorized to perform this operation. User: {arn} is not authorized to perform: ec2:StopInstances on resource: arn:aws:ec2:{region}:{}:instance/{target} because no identity-based policy allows the ec2:StopInstances action. Encoded authorization failure message: {}",
                                self.acct.id,
                                chars(&mut self.rng, BASE64, 48)
                            ),
                        )),
                    }
                };
                self.ct_as(pi, ts, lags.ct, call);
            }
        }
    }

    /// A plausible everyday API call for a cast member.
    fn routine_call(&mut self, pi: usize) -> Call<'static> {
        let rng = &mut self.rng;
        let f = self.funcs[rng.range(0, self.funcs.len() as u64) as usize].name;
        let inst_id = self.inst[0].id.clone();
        match self.people[pi].role {
            Role::Human => match rng.range(0, 8) {
                0 => Call::read(
                    "ec2.amazonaws.com",
                    "DescribeInstances",
                    json!({"instancesSet": {}, "filterSet": {}}),
                ),
                1 => Call::read(
                    "s3.amazonaws.com",
                    "ListBuckets",
                    json!({"Host": format!("s3.{HOME_REGION}.amazonaws.com")}),
                ),
                2 => Call::read(
                    "lambda.amazonaws.com",
                    "GetFunction20150331v2",
                    json!({"functionName": f}),
                ),
                3 => Call::read(
                    "logs.amazonaws.com",
                    "DescribeLogGroups",
                    json!({"limit": 50}),
                ),
                4 => Call::read("sts.amazonaws.com", "GetCallerIdentity", Value::Null),
                5 => Call::read(
                    "monitoring.amazonaws.com",
                    "DescribeAlarms",
                    json!({"maxRecords": 100}),
                ),
                6 => Call::read(
                    "ec2.amazonaws.com",
                    "DescribeSecurityGroups",
                    json!({"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}}),
                ),
                _ => Call::read(
                    "logs.amazonaws.com",
                    "FilterLogEvents",
                    json!({"logGroupName": lambda_group(f), "limit": 100}),
                ),
            },
            Role::Ci => match rng.range(0, 5) {
                0 => Call::read(
                    "lambda.amazonaws.com",
                    "GetFunction20150331v2",
                    json!({"functionName": f}),
                ),
                1 => Call::read("lambda.amazonaws.com", "ListFunctions20150331", Value::Null),
                2 => Call::read(
                    "cloudformation.amazonaws.com",
                    "DescribeStacks",
                    json!({"stackName": format!("{}-app", self.acct.company)}),
                ),
                3 => Call::read(
                    "ssm.amazonaws.com",
                    "GetParameters",
                    json!({"names": [format!("/{}/prod/db-url", self.acct.company)], "withDecryption": true}),
                ),
                _ => Call::read("sts.amazonaws.com", "GetCallerIdentity", Value::Null),
            },
            Role::Backup => match rng.range(0, 2) {
                0 => Call::read(
                    "ec2.amazonaws.com",
                    "DescribeVolumes",
                    json!({"volumeSet": {}, "filterSet": {"items": [{"name": "attachment.instance-id", "valueSet": {"items": [{"value": inst_id}]}}]}}),
                ),
                _ => Call::read(
                    "ec2.amazonaws.com",
                    "DescribeSnapshots",
                    json!({"snapshotSet": {}, "ownersSet": {"items": [{"owner": "self"}]}, "filterSet": {}}),
                ),
            },
        }
    }

    /// Writes a CloudTrail record made by cast member `pi` from their usual IP and user agent.
    fn ct_as(&mut self, pi: usize, ts: i64, lag: i64, call: Call) {
        let p = &self.people[pi];
        let who = identity(&self.acct, p, ts);
        let l = ct_line(
            &mut self.rng,
            &self.acct,
            who,
            &p.m.home_ip,
            &p.ua,
            ts,
            call,
        );
        self.out.push(ts, lag, &self.ct_group, &self.ct_stream, l);
    }

    // --------------------------------------------------------------------------------------------
    // Incidents and distractors
    // --------------------------------------------------------------------------------------------

    fn scenario_minute(
        &mut self,
        t0: i64,
        idx: usize,
        item: &mut Item,
        lags: &Lags,
        flows: &mut [Vec<String>],
    ) {
        let first = t0 == item.start;
        let last = t0 + MIN >= item.end;
        let frac = (t0 - item.start + MIN) as f64 / (item.end - item.start).max(MIN) as f64;
        match &mut item.data {
            Data::Ssh {
                ip,
                crowd,
                targets,
                lo,
                hi,
            } => {
                let total = self.rng.range(*lo, *hi + 1);
                let share = (total / targets.len() as u64).max(1);
                let mut sources = vec![ip.clone()];
                sources.extend(crowd.iter().cloned());
                for &k in targets.iter() {
                    self.brute_force(t0, idx, k, &sources, share, lags, &mut flows[k]);
                }
            }
            Data::Lambda {
                main,
                second,
                fail_p,
                mult,
                bad_deploy,
            } => {
                if first && *bad_deploy {
                    self.deploy_calls(t0, idx, *main, lags.ct);
                }
                let f = &mut self.funcs[*main];
                f.bad_code = *bad_deploy;
                f.rate_mult = *mult;
                f.fail_p = *fail_p;
                f.fail_span = Some(idx);
                // Retries queue up behind slow invocations, so Lambda scales out with cold starts.
                for _ in 0..self.rng.range(1, 4) {
                    if f.envs.len() < 24 {
                        f.envs.push(new_env(&mut self.rng, t0, true));
                    }
                }
                if let Some(s) = *second {
                    let g = &mut self.funcs[s];
                    g.rate_mult = 1.0 + (*mult - 1.0) / 3.0;
                    g.fail_p = *fail_p / 3.0;
                    g.fail_span = Some(idx);
                }
            }
            Data::Disk {
                inst, base, linear, ..
            } => {
                let f = frac.clamp(0.0, 1.0);
                let shape = *linear * f + (1.0 - *linear) * f * f;
                let used = (*base + (100.0 - *base) * shape).min(100.0);
                let k = *inst;
                self.inst[k].disk_force = Some(used);
                self.inst[k].health_span = Some(idx);
                if used.round() >= (*base + DISK_EVIDENCE_RISE).round() {
                    let at = t0 + self.inst[k].health_offset + lags.messages[k];
                    self.out.evidence(idx, at);
                }
                self.disk_errors(t0, idx, k, used.round(), lags.messages[k]);
            }
            Data::Key {
                victim,
                ip,
                region,
                ua,
                buckets,
                taken,
            } => {
                let (ip, region, ua, buckets) = (ip.clone(), *region, *ua, buckets.clone());
                self.leaked_key(
                    t0, idx, *victim, &ip, region, ua, &buckets, taken, frac, first, lags,
                );
            }
            Data::Deploy { func } => {
                let fi = *func;
                self.funcs[fi].cold_span = Some(idx);
                if first {
                    self.deploy_calls(t0, idx, fi, lags.ct);
                } else if t0 == item.start + MIN {
                    let n = self.funcs[fi].envs.len().clamp(2, 6);
                    let envs = (0..n).map(|_| new_env(&mut self.rng, t0, true)).collect();
                    self.funcs[fi].envs = envs;
                }
            }
            Data::Cron { inst, bump, pid } => {
                let (k, pid) = (*inst, *pid);
                let cpu = self.rng.range(90, 100) as f64;
                let h = &mut self.inst[k];
                h.cpu_force = Some(cpu);
                h.disk_bump = *bump * frac.min(1.0);
                h.health_span = Some(idx);
                let ml = lags.messages[k];
                let script = "/usr/local/bin/nightly-report.sh";
                let Sim { rng, inst, out, .. } = self;
                let h = &inst[k];
                let put = |out: &mut Out, ts: i64, tag: &str, msg: &str| {
                    out.push(ts, ml, GROUP_MESSAGES, &h.id, h.line(ts, tag, msg));
                    out.note(idx, ts);
                };
                if first {
                    let ts = t0 + rng.between(0, 500);
                    put(
                        out,
                        ts,
                        &format!("CROND[{pid}]"),
                        &format!("(root) CMD ({script})"),
                    );
                }
                let app = format!("app[{}]", h.app_pid);
                for _ in 0..rng.poisson(20.0) {
                    let ts = t0 + rng.between(0, MIN - 1);
                    let msg = format!(
                        "INFO nightly-report: batch {}/60 rows={} ok",
                        rng.range(1, 61),
                        rng.range(500, 20_000)
                    );
                    put(out, ts, &app, &msg);
                }
                if last {
                    let ts = t0 + 50 * SEC;
                    put(
                        out,
                        ts,
                        &format!("CROND[{pid}]"),
                        &format!("(root) CMDEND ({script})"),
                    );
                }
            }
            Data::Autoscale { inst } => {
                if first {
                    self.autoscale(t0, idx, *inst, lags);
                }
            }
            Data::Backup { rate, seq } => {
                let rate = *rate;
                self.backup_burst(t0, idx, rate, seq, first, last, lags);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn brute_force(
        &mut self,
        t0: i64,
        idx: usize,
        k: usize,
        sources: &[String],
        attempts: u64,
        lags: &Lags,
        flows: &mut Vec<String>,
    ) {
        // One attacker draws nothing from the generator here, so usual scenarios stay as they were.
        fn source<'a>(rng: &mut Rng, sources: &'a [String]) -> &'a str {
            match sources {
                [one] => one,
                many => rng.pick(many).as_str(),
            }
        }
        let Sim {
            rng,
            acct,
            inst,
            out,
            ..
        } = self;
        let h = &mut inst[k];
        let mut done = 0;
        let mut conns: Vec<&str> = Vec::new();
        while done < attempts {
            let user = if rng.chance(0.35) {
                "root"
            } else {
                *rng.pick(&BRUTE_USERS)
            };
            let tries = rng.range(1, 4).min(attempts - done);
            let ts = t0 + rng.between(0, 56 * SEC);
            let ip = source(rng, sources);
            let last = ssh_failures(rng, out, h, ts, lags.secure[k], ip, user, tries);
            out.note(idx, ts);
            out.note(idx, last);
            done += tries;
            conns.push(ip);
        }
        out.count(idx, 0, done);
        for ip in conns {
            let packets = rng.range(8, 30);
            flows.push(flow_line(
                &acct.id,
                &h.eni,
                t0,
                &Flow {
                    src: ip,
                    dst: &h.ip,
                    sport: rng.range(32_768, 61_000),
                    dport: 22,
                    packets,
                    bytes: packets * rng.range(60, 180),
                    accept: true,
                },
            ));
        }
        // The port scan that comes with it: many closed ports, one record each.
        let ip = source(rng, sources);
        let scans = rng.range(30, 151);
        let mut port = rng.range(1, 2_000);
        for _ in 0..scans {
            port = (port + rng.range(1, 400)) % 65_535 + 1;
            let packets = rng.range(1, 3);
            flows.push(flow_line(
                &acct.id,
                &h.eni,
                t0,
                &Flow {
                    src: ip,
                    dst: &h.ip,
                    sport: rng.range(32_768, 61_000),
                    dport: port,
                    packets,
                    bytes: packets * 44,
                    accept: false,
                },
            ));
        }
        out.count(idx, 1, scans);
        out.note(idx, t0);
    }

    fn disk_errors(&mut self, t0: i64, idx: usize, k: usize, used: f64, ml: i64) {
        let Sim { rng, inst, out, .. } = self;
        let h = &inst[k];
        if used >= 97.0 {
            for _ in 0..rng.poisson(if used >= 100.0 { 8.0 } else { 3.0 }) {
                let ts = t0 + rng.between(0, MIN - 1);
                let l = h.line(
                    ts,
                    &format!("app[{}]", h.app_pid),
                    "ERROR write /var/log/app/app.log: No space left on device",
                );
                out.push(ts, ml, GROUP_MESSAGES, &h.id, l);
                out.note(idx, ts);
            }
        }
        if used >= 99.0 {
            let ts = t0 + rng.between(0, MIN - 1);
            let l = h.line(
                ts,
                "rsyslogd[780]",
                "file '/var/log/messages': write error: No space left on device",
            );
            out.push(ts, ml, GROUP_MESSAGES, &h.id, l);
            out.note(idx, ts);
        }
        if used >= 100.0 && rng.chance(0.6) {
            let ts = t0 + rng.between(0, MIN - 1);
            let l = h.line(
                ts,
                "kernel",
                "EXT4-fs warning (device nvme0n1p1): ext4_dx_add_entry:2515: Directory index full!",
            );
            out.push(ts, ml, GROUP_MESSAGES, &h.id, l);
            out.note(idx, ts);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn leaked_key(
        &mut self,
        t0: i64,
        idx: usize,
        victim: usize,
        ip: &str,
        region: &'static str,
        ua: &str,
        buckets: &[usize],
        taken: &mut Vec<String>,
        frac: f64,
        first: bool,
        lags: &Lags,
    ) {
        let acct_id = self.acct.id.clone();
        let arn = self.people[victim].m.arn.clone();
        let user = self.people[victim].m.name.clone();
        let emit = |sim: &mut Sim, ts: i64, call: Call| {
            let who = identity(&sim.acct, &sim.people[victim], ts);
            let l = ct_line(&mut sim.rng, &sim.acct, who, ip, ua, ts, call);
            if sim.out.push(ts, lags.ct, &sim.ct_group, &sim.ct_stream, l) {
                sim.out.note(idx, ts);
                sim.out.evidence(idx, ts + lags.ct);
            }
        };
        if first {
            let ts = t0 + self.rng.between(0, 3 * SEC);
            emit(
                self,
                ts,
                Call {
                    region,
                    ..Call::read("sts.amazonaws.com", "GetCallerIdentity", Value::Null)
                },
            );
            let ts2 = ts + self.rng.between(2 * SEC, 6 * SEC);
            emit(
                self,
                ts2,
                Call::read("iam.amazonaws.com", "GetUser", json!({"userName": user})),
            );
            let ts3 = ts2 + self.rng.between(SEC, 4 * SEC);
            emit(
                self,
                ts3,
                Call {
                    region,
                    ..Call::read(
                        "s3.amazonaws.com",
                        "ListBuckets",
                        json!({"Host": format!("s3.{region}.amazonaws.com")}),
                    )
                },
            );
        }
        // Recon with an AccessDenied storm first, then the S3 theft.
        if frac <= 0.6 {
            let denied = self.rng.range(15, 61);
            for _ in 0..denied {
                let ts = t0 + self.rng.between(4 * SEC, MIN - 1);
                let call = match self.rng.range(0, 6) {
                    0 => Call {
                        error: Some((
                            "AccessDenied",
                            denied_message(
                                &arn,
                                "iam:ListUsers",
                                &format!("arn:aws:iam::{acct_id}:user/"),
                            ),
                        )),
                        ..Call::read("iam.amazonaws.com", "ListUsers", Value::Null)
                    },
                    1 => Call {
                        error: Some((
                            "AccessDenied",
                            denied_message(
                                &arn,
                                "iam:ListRoles",
                                &format!("arn:aws:iam::{acct_id}:role/"),
                            ),
                        )),
                        ..Call::read("iam.amazonaws.com", "ListRoles", Value::Null)
                    },
                    2 => Call {
                        error: Some((
                            "AccessDenied",
                            denied_message(&arn, "iam:ListAttachedUserPolicies", &arn),
                        )),
                        ..Call::read(
                            "iam.amazonaws.com",
                            "ListAttachedUserPolicies",
                            json!({"userName": user}),
                        )
                    },
                    3 => {
                        let secret = format!(
                            "prod/{}/{}",
                            self.acct.company,
                            *self.rng.pick(&["db-password", "stripe-key", "jwt-secret"])
                        );
                        let sregion = if self.rng.chance(0.5) {
                            region
                        } else {
                            HOME_REGION
                        };
                        let res = format!(
                            "arn:aws:secretsmanager:{sregion}:{acct_id}:secret:{secret}-{}",
                            chars(
                                &mut self.rng,
                                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                                6
                            )
                        );
                        Call {
                            region: sregion,
                            error: Some((
                                "AccessDenied",
                                denied_message(&arn, "secretsmanager:GetSecretValue", &res),
                            )),
                            ..Call::read(
                                "secretsmanager.amazonaws.com",
                                "GetSecretValue",
                                json!({"secretId": secret}),
                            )
                        }
                    }
                    _ => {
                        let r = *self.rng.pick(&ALL_REGIONS);
                        Call {
                            region: r,
                            error: Some((
                                "Client.UnauthorizedOperation",
                                "You are not authorized to perform this operation.".to_string(),
                            )),
                            ..Call::read(
                                "ec2.amazonaws.com",
                                "DescribeInstances",
                                json!({"instancesSet": {}, "filterSet": {}}),
                            )
                        }
                    }
                };
                emit(self, ts, call);
            }
            self.out.count(idx, 0, denied);
        }
        let s3_phase = if (0.35..0.75).contains(&frac) {
            Some("REST.GET.OBJECT")
        } else if frac >= 0.7 {
            Some("REST.DELETE.OBJECT")
        } else {
            None
        };
        let Some(op) = s3_phase else { return };
        let n = self.rng.range(20, 121);
        let Sim { rng, acct, out, .. } = self;
        let date = fmt_stream_date(t0);
        for _ in 0..n {
            let ts = t0 + rng.between(0, MIN - 1);
            let mut b = *rng.pick(buckets);
            let (key, status, sent, size) = if op == "REST.GET.OBJECT" {
                let key = match b {
                    ASSETS => format!("img/products/{}.jpg", rng.range(1000, 9999)),
                    _ => format!(
                        "exports/{}/customers-{:05}.csv",
                        &date[..7].replace('/', "-"),
                        rng.range(0, 99_999)
                    ),
                };
                taken.push(format!("{b}:{key}"));
                let size = rng.range(20_000, 9_000_000);
                (key, 200, size, size)
            } else {
                let entry = if taken.is_empty() {
                    format!("{b}:exports/{}.csv", rng.range(0, 99_999))
                } else {
                    taken.swap_remove(rng.range(0, taken.len() as u64) as usize)
                };
                // Delete exactly what was stolen, in the bucket it came from.
                let (bs, key) = entry.split_once(':').unwrap_or(("", "exports/unknown.csv"));
                b = bs.parse().unwrap_or(b);
                (key.to_string(), 204, 0, 0)
            };
            let l = s3_line(
                rng,
                acct,
                &S3Req {
                    ts,
                    bucket: b,
                    ip,
                    requester: &arn,
                    op,
                    key: &key,
                    status,
                    error: "-",
                    bytes_sent: sent,
                    size,
                    ua,
                },
            );
            if out.push(ts, lags.s3[b], GROUP_S3, &acct.buckets[b], l) {
                out.note(idx, ts);
            }
        }
        out.count(idx, if op == "REST.GET.OBJECT" { 1 } else { 2 }, n);
    }

    fn deploy_calls(&mut self, t0: i64, idx: usize, fi: usize, lag: i64) {
        let ci = self.person(Role::Ci);
        let name = self.funcs[fi].name;
        let fn_arn = format!(
            "arn:aws:lambda:{HOME_REGION}:{}:function:{name}",
            self.acct.id
        );
        let ts = t0 + self.rng.between(5 * SEC, 25 * SEC);
        let sha = chars(&mut self.rng, BASE64, 43) + "=";
        let size = self.rng.range(200_000, 9_000_000);
        let update = Call {
            source: "lambda.amazonaws.com",
            name: "UpdateFunctionCode20150331v2",
            region: HOME_REGION,
            read_only: false,
            params: json!({"functionName": name, "publish": false, "dryRun": false}),
            response: json!({"functionName": name, "functionArn": fn_arn, "runtime": "nodejs20.x",
                "codeSize": size, "codeSha256": sha, "version": "$LATEST", "lastUpdateStatus": "InProgress"}),
            error: None,
        };
        self.ct_as(ci, ts, lag, update);
        self.out.note(idx, ts);
        let ts2 = ts + self.rng.between(15 * SEC, 30 * SEC);
        let version = self.rng.range(12, 140).to_string();
        let publish = Call {
            source: "lambda.amazonaws.com",
            name: "PublishVersion20150331",
            region: HOME_REGION,
            read_only: false,
            params: json!({"functionName": name}),
            response: json!({"functionName": name, "functionArn": format!("{fn_arn}:{version}"),
                "version": version, "codeSha256": sha, "state": "Active"}),
            error: None,
        };
        self.ct_as(ci, ts2, lag, publish);
        self.out.note(idx, ts2);
    }

    fn autoscale(&mut self, t0: i64, idx: usize, k: usize, lags: &Lags) {
        let ts = t0 + self.rng.between(5 * SEC, 30 * SEC);
        let h = self.inst[k].clone();
        let subnet = format!("subnet-0{}", hex(&mut self.rng, 16));
        let call = Call {
            source: "ec2.amazonaws.com",
            name: "RunInstances",
            region: HOME_REGION,
            read_only: false,
            params: json!({
                "instancesSet": {"items": [{"minCount": 1, "maxCount": 1}]},
                "instanceType": "t3.medium",
                "launchTemplate": {"launchTemplateId": format!("lt-0{}", hex(&mut self.rng, 16)), "version": "$Default"},
                "subnetId": subnet,
                "tagSpecificationSet": {"items": [{"resourceType": "instance", "tags": [
                    {"key": "aws:autoscaling:groupName", "value": format!("{}-web-asg", self.acct.company)}]}]}
            }),
            response: json!({
                "reservationId": format!("r-0{}", hex(&mut self.rng, 16)),
                "ownerId": self.acct.id,
                "instancesSet": {"items": [{
                    "instanceId": h.id,
                    "instanceState": {"code": 0, "name": "pending"},
                    "privateIpAddress": h.ip,
                    "subnetId": subnet,
                    "networkInterfaceSet": {"items": [{"networkInterfaceId": h.eni, "privateIpAddress": h.ip}]}
                }]}
            }),
            error: None,
        };
        let who = UserIdentity {
            kind: "AWSService",
            principal_id: None,
            arn: None,
            account_id: None,
            access_key_id: None,
            user_name: None,
            session_context: None,
            invoked_by: Some("autoscaling.amazonaws.com".to_string()),
        };
        let svc = "autoscaling.amazonaws.com";
        let l = ct_line(&mut self.rng, &self.acct, who, svc, svc, ts, call);
        self.out
            .push(ts, lags.ct, &self.ct_group, &self.ct_stream, l);
        self.out.note(idx, ts);

        // Boot: cloud-init stages, then the services; regular logging starts at `active_from`.
        let boot = ts + self.rng.between(40 * SEC, 70 * SEC);
        let ml = lags.messages[k];
        let pid = self.rng.range(1000, 1400);
        let mut t = boot;
        let mut up = 4.0 + self.rng.uniform(0.0, 2.0);
        let mut lines: Vec<(i64, String, String)> = Vec::new();
        for stage in ["init-local", "init", "modules:config", "modules:final"] {
            lines.push((
                t,
                format!("cloud-init[{pid}]"),
                format!(
                    "Cloud-init v. 22.2.2 running '{stage}' at {}. Up {up:.2} seconds.",
                    fmt_rfc2822(t)
                ),
            ));
            let step = self.rng.between(2 * SEC, 9 * SEC);
            t += step;
            up += step as f64 / 1000.0;
        }
        lines.push((
            t,
            "systemd[1]".to_string(),
            "Started amazon-ssm-agent.service - amazon-ssm-agent.".to_string(),
        ));
        lines.push((
            t + 300,
            format!("app[{}]", h.app_pid),
            "INFO app listening on :8080".to_string(),
        ));
        t += self.rng.between(5 * SEC, 15 * SEC);
        up += 10.0;
        lines.push((
            t,
            format!("cloud-init[{pid}]"),
            format!(
                "Cloud-init v. 22.2.2 finished at {}. Datasource DataSourceEc2Local.  Up {up:.2} seconds",
                fmt_rfc2822(t)
            ),
        ));
        for (ts, tag, msg) in lines {
            let l = h.line(ts, &tag, &msg);
            self.out.push(ts, ml, GROUP_MESSAGES, &h.id, l);
            self.out.note(idx, ts);
        }
        self.inst[k].active_from = (t / MIN + 1) * MIN;
    }

    #[allow(clippy::too_many_arguments)]
    fn backup_burst(
        &mut self,
        t0: i64,
        idx: usize,
        rate: u64,
        seq: &mut u64,
        first: bool,
        last: bool,
        lags: &Lags,
    ) {
        let bi = self.person(Role::Backup);
        if first || last {
            let ts = t0 + self.rng.between(0, 10 * SEC);
            let vol = format!("vol-0{}", hex(&mut self.rng, 16));
            let snap = format!("snap-0{}", hex(&mut self.rng, 16));
            let calls = if first {
                vec![
                    Call::read(
                        "ec2.amazonaws.com",
                        "DescribeVolumes",
                        json!({"volumeSet": {"items": [{"volumeId": vol}]}, "filterSet": {}}),
                    ),
                    Call {
                        source: "ec2.amazonaws.com",
                        name: "CreateSnapshot",
                        region: HOME_REGION,
                        read_only: false,
                        params: json!({"volumeId": vol, "description": "nightly backup"}),
                        response: json!({"snapshotId": snap, "volumeId": vol, "status": "pending"}),
                        error: None,
                    },
                ]
            } else {
                vec![Call {
                    source: "ec2.amazonaws.com",
                    name: "CreateTags",
                    region: HOME_REGION,
                    read_only: false,
                    params: json!({"resourcesSet": {"items": [{"resourceId": snap}]},
                        "tagSet": {"items": [{"key": "backup", "value": "nightly"}]}}),
                    response: json!({"_return": true}),
                    error: None,
                }]
            };
            for (i, c) in calls.into_iter().enumerate() {
                let t = ts + i as i64 * 2 * SEC;
                self.ct_as(bi, t, lags.ct, c);
                self.out.note(idx, t);
            }
        }
        let n = (rate as f64 * self.rng.uniform(0.85, 1.15)) as u64;
        let p = &self.people[bi];
        let (ip, arn, ua) = (p.m.home_ip.clone(), p.m.arn.clone(), p.s3_ua.clone());
        let date = fmt_stream_date(t0);
        let mut stamps: Vec<i64> = (0..n).map(|_| t0 + self.rng.between(0, MIN - 1)).collect();
        stamps.sort_unstable();
        for ts in stamps {
            *seq += 1;
            let key = format!("nightly/{date}/fs-snapshot.{:06}.tar.zst", seq);
            let size = self.rng.range(4_000_000, 16_777_216);
            let l = s3_line(
                &mut self.rng,
                &self.acct,
                &S3Req {
                    ts,
                    bucket: BACKUPS,
                    ip: &ip,
                    requester: &arn,
                    op: "REST.PUT.OBJECT",
                    key: &key,
                    status: 200,
                    error: "-",
                    bytes_sent: 0,
                    size,
                    ua: &ua,
                },
            );
            if self.out.push(
                ts,
                lags.s3[BACKUPS],
                GROUP_S3,
                &self.acct.buckets[BACKUPS],
                l,
            ) {
                self.out.note(idx, ts);
            }
        }
        self.out.count(idx, 0, n);
    }

    // --------------------------------------------------------------------------------------------
    // Ground truth
    // --------------------------------------------------------------------------------------------

    fn truth(
        &self,
        cfg: &SimConfig,
        baseline_end: i64,
        end_ms: i64,
        items: &[Item],
    ) -> GroundTruth {
        let mut incidents = Vec::new();
        let mut distractors = Vec::new();
        for (idx, item) in items.iter().enumerate() {
            let (a, b) = self.out.spans[idx].unwrap_or((item.start, item.end));
            let c = |slot| self.out.get_count(idx, slot);
            match (&item.what, &item.data) {
                (What::Inc(kind), data) => {
                    let (main, entities, remediation, detail) =
                        self.describe_incident(data, &c, b - a);
                    let variant = match data {
                        Data::Ssh { crowd, .. } if !crowd.is_empty() => Variant::ManySources,
                        Data::Lambda {
                            bad_deploy: true, ..
                        } => Variant::BadDeploy,
                        Data::Disk {
                            auto_scaling_group: Some(_),
                            ..
                        } => Variant::AutoScaled,
                        _ => Variant::Usual,
                    };
                    let auto_scaling_group = match data {
                        Data::Disk {
                            auto_scaling_group, ..
                        } => auto_scaling_group.clone(),
                        _ => None,
                    };
                    // Code last changed at the bad deploy, otherwise weeks before the scenario.
                    let function_modified_ms = match data {
                        Data::Lambda { bad_deploy, .. } => Some(if *bad_deploy {
                            a
                        } else {
                            cfg.start_ms - 21 * DAY
                        }),
                        _ => None,
                    };
                    incidents.push(TruthIncident {
                        kind: *kind,
                        onset_ms: a,
                        evidence_ms: self.out.evidence[idx].unwrap_or(a).max(a),
                        end_ms: b,
                        main_entity: main,
                        entities,
                        remediation: remediation.to_string(),
                        detail,
                        variant,
                        auto_scaling_group,
                        function_modified_ms,
                    });
                }
                (What::Dis(kind), data) => {
                    let (entities, detail) = self.describe_distractor(data, &c, b - a);
                    distractors.push(Distractor {
                        kind: *kind,
                        start_ms: a,
                        end_ms: b,
                        entities,
                        detail,
                    });
                }
            }
        }
        incidents.sort_by_key(|i| i.onset_ms);
        distractors.sort_by_key(|d| d.start_ms);
        GroundTruth {
            seed: cfg.seed,
            start_ms: cfg.start_ms,
            baseline_end_ms: baseline_end,
            end_ms,
            account_id: self.acct.id.clone(),
            region: HOME_REGION.to_string(),
            cast: self.people.iter().map(|p| p.m.clone()).collect(),
            incidents,
            distractors,
        }
    }

    fn describe_incident(
        &self,
        data: &Data,
        c: &dyn Fn(usize) -> u64,
        len: i64,
    ) -> (String, Vec<String>, &'static str, String) {
        let mins = (len + MIN - 1) / MIN;
        match data {
            Data::Ssh {
                ip, crowd, targets, ..
            } => {
                let ids: Vec<String> = targets.iter().map(|&k| self.inst[k].id.clone()).collect();
                let mut entities = vec![ip.clone()];
                entities.extend(crowd.iter().cloned());
                entities.extend(ids.iter().cloned());
                entities.extend(targets.iter().map(|&k| self.inst[k].eni.clone()));
                let from = if crowd.is_empty() {
                    ip.clone()
                } else {
                    format!("{} addresses", crowd.len() + 1)
                };
                let detail = format!(
                    "SSH brute force from {from} against {} ({} failed attempts, {} rejected port-scan flows in {mins} min)",
                    ids.join(" and "),
                    c(0),
                    c(1)
                );
                let fix = if crowd.is_empty() {
                    ActionKind::DenyCidr
                } else {
                    ActionKind::RevokeIngress
                };
                (ip.clone(), entities, fix.id(), detail)
            }
            Data::Lambda {
                main,
                second,
                bad_deploy: true,
                ..
            } => {
                let f = &self.funcs[*main];
                let detail = format!(
                    "ci-deployer shipped broken code to Lambda {}: {} of {} invocations hung until the {} s timeout in {mins} min",
                    f.name,
                    c(0),
                    c(1),
                    f.timeout_s
                );
                let mut entities = vec![f.name.to_string()];
                entities.extend(second.map(|s| self.funcs[s].name.to_string()));
                (
                    f.name.to_string(),
                    entities,
                    ActionKind::NotifySns.id(),
                    detail,
                )
            }
            Data::Lambda { main, second, .. } => {
                let f = &self.funcs[*main];
                let mut entities = vec![f.name.to_string()];
                if let Some(s) = second {
                    entities.push(self.funcs[*s].name.to_string());
                }
                entities.push(self.acct.db_host.clone());
                entities.push(self.acct.db_ip.clone());
                let also = second
                    .map(|s| format!("; {} also affected", self.funcs[s].name))
                    .unwrap_or_default();
                let detail = format!(
                    "Lambda {} cannot reach its database {}:5432: {} of {} invocations timed out after {} s in {mins} min{also}",
                    f.name,
                    self.acct.db_ip,
                    c(0),
                    c(1),
                    f.timeout_s
                );
                (
                    f.name.to_string(),
                    entities,
                    ActionKind::ThrottleLambda.id(),
                    detail,
                )
            }
            Data::Disk {
                inst,
                base,
                auto_scaling_group,
                ..
            } => {
                let h = &self.inst[*inst];
                let (cause, fix) = match auto_scaling_group {
                    Some(g) => (
                        format!("unrotated application logs on an instance of {g}"),
                        ActionKind::RunSsmDocument,
                    ),
                    None => (
                        "a runaway process holding deleted files open".to_string(),
                        ActionKind::RebootInstance,
                    ),
                };
                let detail = format!(
                    "Root volume of {} ({}) filled from {:.0}% to 100% in {mins} min by {cause}; writes failing with No space left on device",
                    h.id, h.host, base
                );
                (
                    h.id.clone(),
                    vec![h.id.clone(), h.host.clone(), h.ip.clone()],
                    fix.id(),
                    detail,
                )
            }
            Data::Key {
                victim,
                ip,
                region,
                ua,
                buckets,
                ..
            } => {
                let p = &self.people[*victim].m;
                let mut entities = vec![
                    p.access_key.clone(),
                    p.arn.clone(),
                    p.name.clone(),
                    ip.clone(),
                    region.to_string(),
                ];
                let names: Vec<String> = buckets
                    .iter()
                    .map(|&b| self.acct.buckets[b].clone())
                    .collect();
                entities.extend(names.iter().cloned());
                let detail = format!(
                    "Access key {} of {} used from {ip} ({region}, {ua}): {} denied recon calls, then {} S3 GETs and {} DELETEs on {}",
                    p.access_key,
                    p.name,
                    c(0),
                    c(1),
                    c(2),
                    names.join(", ")
                );
                (
                    p.access_key.clone(),
                    entities,
                    ActionKind::DeactivateAccessKey.id(),
                    detail,
                )
            }
            _ => (String::new(), Vec::new(), "", String::new()),
        }
    }

    fn describe_distractor(
        &self,
        data: &Data,
        c: &dyn Fn(usize) -> u64,
        len: i64,
    ) -> (Vec<String>, String) {
        let mins = (len + MIN - 1) / MIN;
        match data {
            Data::Deploy { func } => {
                let ci = &self.people[self.person(Role::Ci)].m;
                let f = self.funcs[*func].name;
                (
                    vec![f.to_string(), ci.arn.clone()],
                    format!("ci-deployer deployed new code to {f}; its environments cold-started"),
                )
            }
            Data::Cron { inst, .. } => {
                let h = &self.inst[*inst];
                (
                    vec![h.id.clone(), h.host.clone()],
                    format!(
                        "Nightly report job on {} pinned CPU above 90% for {mins} min",
                        h.id
                    ),
                )
            }
            Data::Autoscale { inst } => {
                let h = &self.inst[*inst];
                (
                    vec![h.id.clone(), h.eni.clone(), h.host.clone()],
                    format!(
                        "Auto Scaling launched {} ({}) which joined the fleet",
                        h.id, h.host
                    ),
                )
            }
            Data::Backup { .. } => {
                let p = &self.people[self.person(Role::Backup)].m;
                (
                    vec![p.arn.clone(), self.acct.buckets[BACKUPS].clone()],
                    format!(
                        "backup-agent uploaded {} objects to {} in {mins} min",
                        c(0),
                        self.acct.buckets[BACKUPS]
                    ),
                )
            }
            _ => (Vec::new(), String::new()),
        }
    }
}

/// Writes one failed SSH connection of `tries` password guesses; returns the time of its last line.
#[allow(clippy::too_many_arguments)]
fn ssh_failures(
    rng: &mut Rng,
    out: &mut Out,
    h: &mut Instance,
    ts: i64,
    lag: i64,
    ip: &str,
    user: &str,
    tries: u64,
) -> i64 {
    let pid = h.pid(rng);
    let port = rng.range(32_768, 61_000);
    let tag = format!("sshd[{pid}]");
    let id = h.id.clone();
    let mut t = ts;
    let mut put = |t: i64, msg: String| {
        let l = h.line(t, &tag, &msg);
        out.push(t, lag, GROUP_SECURE, &id, l);
    };
    let valid = user == "root";
    if valid {
        put(
            t,
            format!(
                "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user=root"
            ),
        );
    } else {
        put(t, format!("Invalid user {user} from {ip} port {port}"));
    }
    for i in 0..tries {
        if i > 0 {
            t += rng.between(300, 2_500);
        } else {
            t += rng.between(1_000, 2_500);
        }
        if valid {
            put(
                t,
                format!("Failed password for root from {ip} port {port} ssh2"),
            );
        } else {
            put(
                t,
                format!("Failed password for invalid user {user} from {ip} port {port} ssh2"),
            );
        }
    }
    t += rng.between(50, 400);
    if tries >= 3 {
        put(
            t,
            "Disconnecting: Too many authentication failures [preauth]".to_string(),
        );
    } else if valid {
        put(
            t,
            format!("Connection closed by authenticating user root {ip} port {port} [preauth]"),
        );
    } else {
        put(
            t,
            format!("Connection closed by invalid user {user} {ip} port {port} [preauth]"),
        );
    }
    t
}

/// Writes one Lambda invocation (Node.js runtime) starting at `ts`.
fn invocation(
    rng: &mut Rng,
    out: &mut Out,
    acct: &Account,
    f: &mut Func,
    group: &str,
    lag: i64,
    ts: i64,
) {
    if f.envs.is_empty() {
        f.envs.push(new_env(rng, ts, true));
    }
    let k = rng.range(0, f.envs.len() as u64) as usize;
    let cold = f.envs[k].cold;
    f.envs[k].cold = false;
    let stream = f.envs[k].stream.clone();
    let id = uuid4(rng);
    let mut t = ts;
    let mut init = String::new();
    if cold {
        out.push(
            t,
            lag,
            group,
            &stream,
            format!(
                "INIT_START Runtime Version: nodejs:20.v31\tRuntime Version ARN: {}",
                acct.runtime_arn
            ),
        );
        if let Some(s) = f.cold_span.or(f.fail_span) {
            out.note(s, t);
        }
        let init_ms = rng.uniform(150.0, 450.0);
        init = format!("Init Duration: {init_ms:.2} ms\t");
        t += init_ms as i64 + 1;
    }
    out.push(
        t,
        lag,
        group,
        &stream,
        format!("START RequestId: {id} Version: $LATEST"),
    );

    let mem_used =
        (f.base_mem_used + rng.range(0, 12) as u32 + if cold { 14 } else { 0 }).min(f.mem);
    let fail = f.fail_p > 0.0 && rng.chance(f.fail_p);
    let timeout_ms = f64::from(f.timeout_s) * 1000.0;
    let in_incident = f.fail_span.is_some();
    let duration;
    if fail && f.bad_code {
        // The new code awaits a promise nothing resolves after a swallowed TypeError, so it
        // hangs until Lambda kills it; the database is fine.
        let e1 = t + (timeout_ms * rng.uniform(0.05, 0.2)) as i64;
        out.push(
            e1,
            lag,
            group,
            &stream,
            format!(
                "{}\t{id}\tERROR\tUnhandled Promise Rejection: TypeError: Cannot read properties of undefined (reading 'tenantId')",
                fmt_iso8601_ms(e1)
            ),
        );
        duration = timeout_ms + rng.uniform(0.5, 20.0);
    } else if fail {
        // The database is unreachable: the handler hangs on connect until Lambda kills it.
        let e1 = t + (timeout_ms * rng.uniform(0.3, 0.5)) as i64;
        out.push(
            e1,
            lag,
            group,
            &stream,
            format!(
                "{}\t{id}\tERROR\tconnect ETIMEDOUT {}:5432",
                fmt_iso8601_ms(e1),
                acct.db_ip
            ),
        );
        let e2 = t + (timeout_ms * rng.uniform(0.55, 0.9)) as i64;
        out.push(
            e2,
            lag,
            group,
            &stream,
            format!(
                "{}\t{id}\tERROR\tcould not connect to database {}:5432: Connection timed out",
                fmt_iso8601_ms(e2),
                acct.db_host
            ),
        );
        duration = timeout_ms + rng.uniform(0.5, 20.0);
    } else if in_incident && rng.chance(0.3) {
        duration = rng.uniform(1000.0, timeout_ms * 0.8);
        let e = t + duration as i64 - 2;
        out.push(
            e,
            lag,
            group,
            &stream,
            format!(
                "{}\t{id}\tERROR\tSequelizeConnectionAcquireTimeoutError: Operation timeout",
                fmt_iso8601_ms(e)
            ),
        );
    } else {
        let slow = if in_incident { 3.0 } else { 1.0 };
        let d = f.base_ms * rng.uniform(0.5, 1.0) * (1.0 + rng.f64() * rng.f64() * 2.0) * slow;
        duration = d.min(timeout_ms * 0.9);
        let mid = t + (duration * 0.6) as i64;
        if rng.chance(0.006) {
            let msg = *rng.pick(&[
                "Cannot read properties of undefined (reading 'id')",
                "Request failed with status code 502",
                "Invalid signature",
            ]);
            let err = ErrorPayload {
                error_type: "Error",
                error_message: msg,
                stack: vec![
                    format!("Error: {msg}"),
                    "    at Runtime.handler (file:///var/task/index.mjs:42:11)".to_string(),
                    "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)".to_string(),
                ],
            };
            let json = serde_json::to_string(&err).unwrap_or_default();
            out.push(
                mid,
                lag,
                group,
                &stream,
                format!(
                    "{}\t{id}\tERROR\tInvoke Error \t{json}",
                    fmt_iso8601_ms(mid)
                ),
            );
        } else if rng.chance(0.5) {
            let msg = app_message(rng, f.name, duration);
            out.push(
                mid,
                lag,
                group,
                &stream,
                format!("{}\t{id}\tINFO\t{msg}", fmt_iso8601_ms(mid)),
            );
        }
    }
    // Rare baseline timeouts happen too, e.g. a slow third-party API.
    let rare_timeout = !fail && !in_incident && rng.chance(0.0005);
    let duration = if rare_timeout {
        timeout_ms + rng.uniform(0.5, 20.0)
    } else {
        duration
    };
    let timed_out = fail || rare_timeout;
    let end = t + duration as i64;
    out.push(end, lag, group, &stream, format!("END RequestId: {id}"));
    let billed = if timed_out {
        timeout_ms as i64
    } else {
        duration.ceil() as i64
    };
    out.push(
        end,
        lag,
        group,
        &stream,
        format!(
            "REPORT RequestId: {id}\tDuration: {duration:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {mem_used} MB\t{init}",
            f.mem
        ),
    );
    if timed_out {
        out.push(
            end,
            lag,
            group,
            &stream,
            format!(
                "{} {id} Task timed out after {}.00 seconds",
                fmt_iso8601_ms(end),
                f.timeout_s
            ),
        );
    }
    if let Some(s) = f.fail_span {
        out.count(s, 1, 1);
        if fail {
            out.count(s, 0, 1);
            out.note(s, ts);
            out.note(s, end);
        }
    }
}

/// Body of a Node.js `Invoke Error` line, fields in the runtime's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorPayload<'a> {
    error_type: &'a str,
    error_message: &'a str,
    stack: Vec<String>,
}

fn app_message(rng: &mut Rng, name: &str, duration: f64) -> String {
    let ms = duration.round();
    match name {
        "orders-api" => format!("processed order {} in {ms} ms", rng.range(10_000, 99_999)),
        "image-resize" => format!("resized uploads/{}.jpg to 3 sizes", hex(rng, 12)),
        "payments-webhook" => format!(
            "handled webhook evt_{} type=payment_intent.succeeded",
            chars(rng, LOWER_ALNUM, 14)
        ),
        "notify-email" => format!(
            "sent email template=order-confirmation to user {}",
            rng.range(1_000, 99_999)
        ),
        "inventory-sync" => format!("synced {} SKUs from warehouse", rng.range(10, 800)),
        _ => format!(
            "issued token for user {} ttl=3600",
            rng.range(1_000, 99_999)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_change_the_fix_and_leave_usual_scenarios_alone() {
        let base = SimConfig {
            baseline_hours: 0.5,
            ..SimConfig::default()
        };
        let mut seen = std::collections::HashSet::new();
        for seed in 1..=12 {
            let plain = generate(&SimConfig {
                seed,
                ..base.clone()
            });
            let varied = generate(&SimConfig {
                seed,
                variants: true,
                ..base.clone()
            });
            for (p, v) in plain.truth.incidents.iter().zip(&varied.truth.incidents) {
                assert_eq!(p.variant, Variant::Usual);
                assert_eq!(p.kind, v.kind);
                assert!(
                    (p.onset_ms - v.onset_ms).abs() < MIN,
                    "same slot in the timeline"
                );
                seen.insert(v.variant);
                match v.variant {
                    Variant::Usual => assert_eq!(p.remediation, v.remediation),
                    Variant::ManySources => {
                        assert_eq!(v.remediation, ActionKind::RevokeIngress.id());
                        let ips = v
                            .entities
                            .iter()
                            .filter(|e| e.parse::<std::net::IpAddr>().is_ok());
                        assert!(ips.count() >= 13);
                    }
                    Variant::AutoScaled => {
                        assert_eq!(v.remediation, ActionKind::RunSsmDocument.id());
                        assert!(v.auto_scaling_group.is_some());
                    }
                    Variant::BadDeploy => {
                        assert_eq!(v.remediation, ActionKind::NotifySns.id());
                        assert_eq!(v.function_modified_ms, Some(v.onset_ms));
                        let deploy = varied.events.iter().any(|e| {
                            e.message.contains("UpdateFunctionCode")
                                && e.message.contains(&v.main_entity)
                                && e.ts_ms >= v.onset_ms
                        });
                        assert!(deploy, "the bad deploy is in CloudTrail");
                    }
                }
            }
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
    }
    use crate::rng::det_exp;
    use std::collections::HashSet;

    fn default_scenario() -> Scenario {
        generate(&SimConfig::default())
    }

    #[test]
    fn time_formatting_matches_known_dates() {
        assert_eq!(iso(1_795_392_000_000), "2026-11-23T00:00:00Z");
        assert_eq!(
            fmt_iso8601_ms(1_795_392_000_000 + 36_062_123),
            "2026-11-23T10:01:02.123Z"
        );
        assert_eq!(
            fmt_syslog(1_795_392_000_000 + 36_062_123),
            "Nov 23 10:01:02"
        );
        assert_eq!(
            fmt_s3_time(1_795_392_000_000 + 36_062_000),
            "[23/Nov/2026:10:01:02 +0000]"
        );
        // 2024-02-29T12:00:00Z, a leap day.
        assert_eq!(iso(1_709_208_000_000), "2024-02-29T12:00:00Z");
        assert_eq!(fmt_syslog(1_709_208_000_000), "Feb 29 12:00:00");
        // Day is space-padded in syslog: 2026-11-03.
        assert_eq!(fmt_syslog(1_795_392_000_000 - 20 * DAY), "Nov  3 00:00:00");
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(-1_000), "1969-12-31T23:59:59Z");
        assert_eq!(
            fmt_rfc2822(1_795_392_000_000),
            "Mon, 23 Nov 2026 00:00:00 +0000"
        );
        assert_eq!(fmt_stream_date(1_795_392_000_000), "2026/11/23");
    }

    #[test]
    fn deterministic_math_is_accurate() {
        for x in [-30.0, -5.0, -1.0, -0.1, 0.0, 0.7] {
            let e: f64 = x;
            assert!(
                (det_exp(x) - e.exp()).abs() <= 1e-12 * e.exp().max(1.0),
                "exp {x}"
            );
        }
        for x in [-10.0, -3.0, 0.0, 1.0, 2.5, 7.0, 100.0] {
            let s: f64 = x;
            assert!((det_sin(x) - s.sin()).abs() < 1e-9, "sin {x}");
        }
        let mut rng = Rng::new(7);
        let n = 20_000;
        let mean = (0..n).map(|_| rng.poisson(3.0)).sum::<u64>() as f64 / n as f64;
        assert!((mean - 3.0).abs() < 0.1, "{mean}");
        let mean = (0..n).map(|_| rng.poisson(60.0)).sum::<u64>() as f64 / n as f64;
        assert!((mean - 60.0).abs() < 0.5, "{mean}");
    }

    #[test]
    fn same_seed_same_scenario_and_different_seeds_differ() {
        let a = default_scenario();
        let b = default_scenario();
        assert_eq!(a.events, b.events);
        assert_eq!(
            serde_json::to_string(&a.truth).unwrap(),
            serde_json::to_string(&b.truth).unwrap()
        );
        let c = generate(&SimConfig {
            seed: 2,
            ..SimConfig::default()
        });
        assert_ne!(a.truth.account_id, c.truth.account_id);
        let ids = |s: &Scenario| -> Vec<String> {
            s.truth
                .incidents
                .iter()
                // Function names come from a small pool; every other main entity is a fresh id.
                .filter(|i| i.kind != IncidentKind::LambdaTimeoutCascade)
                .map(|i| i.main_entity.clone())
                .collect()
        };
        let ca: HashSet<String> = ids(&a).into_iter().collect();
        assert!(ids(&c).iter().all(|e| !ca.contains(e)));
        let onsets =
            |s: &Scenario| -> Vec<i64> { s.truth.incidents.iter().map(|i| i.onset_ms).collect() };
        assert_ne!(onsets(&a), onsets(&c));
        let keys = |s: &Scenario| -> Vec<String> {
            s.truth.cast.iter().map(|m| m.access_key.clone()).collect()
        };
        assert_ne!(keys(&a), keys(&c));
        let orders: HashSet<Vec<IncidentKind>> = (1..=6)
            .map(|seed| {
                let s = generate(&SimConfig {
                    seed,
                    baseline_hours: 0.5,
                    ..SimConfig::default()
                });
                s.truth.incidents.iter().map(|i| i.kind).collect()
            })
            .collect();
        assert!(
            orders.len() > 1,
            "incident order never changes with the seed"
        );
    }

    #[test]
    fn events_sorted_and_lags_in_range() {
        let s = default_scenario();
        assert!(
            s.events
                .windows(2)
                .all(|w| w[0].arrival_ms <= w[1].arrival_ms)
        );
        let ct = cloudtrail_group(&s.truth.account_id);
        for e in &s.events {
            let lag = e.arrival_ms - e.ts_ms;
            assert!(lag >= 0, "{e:?}");
            assert!(e.ts_ms >= s.truth.start_ms && e.ts_ms < s.truth.end_ms);
            let (lo, hi) = match e.group.as_str() {
                GROUP_SECURE | GROUP_MESSAGES => (SEC, 3 * SEC),
                GROUP_VPC => (60 * SEC, 120 * SEC),
                GROUP_S3 => (2 * MIN, 6 * MIN),
                g if g == ct => (3 * MIN, 7 * MIN),
                g if g.starts_with("/aws/lambda/") => (SEC, 2 * SEC),
                g => panic!("unknown group {g}"),
            };
            assert!((lo..=hi).contains(&lag), "lag {lag} for {e:?}");
        }
    }

    fn is_syslog_prefix(m: &str) -> bool {
        let b = m.as_bytes();
        m.len() > 16
            && MONTHS.contains(&&m[..3])
            && b[3] == b' '
            && (b[4] == b' ' || b[4].is_ascii_digit())
            && b[5].is_ascii_digit()
            && b[9] == b':'
            && b[12] == b':'
            && b[15] == b' '
    }

    /// Splits an S3 access log line into fields, honouring brackets and quotes.
    fn s3_fields(line: &str) -> Vec<String> {
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut close: Option<char> = None;
        for ch in line.chars() {
            match close {
                Some(c) if ch == c => {
                    cur.push(ch);
                    close = None;
                }
                Some(_) => cur.push(ch),
                None if ch == ' ' => fields.push(std::mem::take(&mut cur)),
                None => {
                    if cur.is_empty() && ch == '[' {
                        close = Some(']');
                    } else if cur.is_empty() && ch == '"' {
                        close = Some('"');
                    }
                    cur.push(ch);
                }
            }
        }
        fields.push(cur);
        fields
    }

    #[test]
    fn every_line_matches_its_format() {
        let s = default_scenario();
        let ct = cloudtrail_group(&s.truth.account_id);
        let mut seen = HashSet::new();
        for e in &s.events {
            let m = &e.message;
            match e.group.as_str() {
                GROUP_SECURE => {
                    assert!(is_syslog_prefix(m), "{m}");
                    assert!(e.stream.starts_with("i-0") && e.stream.len() == 19);
                    let rest = m[16..].split_once(' ').unwrap().1;
                    assert!(
                        rest.starts_with("sshd[") || rest.starts_with("sudo: "),
                        "{m}"
                    );
                    seen.insert("secure");
                }
                GROUP_MESSAGES => {
                    assert!(is_syslog_prefix(m), "{m}");
                    let rest = m[16..].split_once(' ').unwrap().1;
                    let tag = rest.split_once(": ").unwrap().0;
                    assert!(
                        [
                            "node-health[",
                            "app[",
                            "CROND[",
                            "systemd",
                            "dnf[",
                            "cloud-init[",
                            "rsyslogd[",
                            "kernel"
                        ]
                        .iter()
                        .any(|p| tag.starts_with(p)),
                        "{m}"
                    );
                    if let Some(v) = rest.strip_prefix("node-health[911]: disk / used=") {
                        let (pct, avail) = v.split_once("% avail=").unwrap();
                        assert!(pct.parse::<u32>().unwrap() <= 100);
                        assert!(avail.ends_with('G'));
                    }
                    seen.insert("messages");
                }
                GROUP_VPC => {
                    let f: Vec<&str> = m.split(' ').collect();
                    assert_eq!(f.len(), 14, "{m}");
                    assert_eq!(f[0], "2");
                    assert_eq!(f[1], s.truth.account_id);
                    assert_eq!(f[2], e.stream);
                    let (start, end): (i64, i64) = (f[10].parse().unwrap(), f[11].parse().unwrap());
                    assert_eq!(end - start, 60);
                    assert_eq!(start * 1000, e.ts_ms);
                    if f[13] == "NODATA" {
                        assert!(f[3..10].iter().all(|x| *x == "-") && f[12] == "-");
                    } else {
                        assert_eq!(f[13], "OK");
                        assert!(["ACCEPT", "REJECT"].contains(&f[12]));
                        for x in &f[5..10] {
                            x.parse::<u64>().unwrap();
                        }
                    }
                    seen.insert("vpc");
                }
                GROUP_S3 => {
                    let f = s3_fields(m);
                    assert_eq!(f.len(), 26, "{m}");
                    assert_eq!(f[0].len(), 64);
                    assert_eq!(f[1], e.stream);
                    assert_eq!(f[2], fmt_s3_time(e.ts_ms));
                    assert!(f[8].starts_with("\"") && f[8].ends_with(" HTTP/1.1\""));
                    assert_eq!(f[15], "\"-\"");
                    assert!(f[16].starts_with('"') && f[16].ends_with('"'));
                    assert_eq!(f[5].len(), 16);
                    f[9].parse::<u16>().unwrap();
                    assert!(f[6].starts_with("REST."));
                    assert_eq!(f[19], "SigV4");
                    assert_eq!(f[23], "TLSv1.2");
                    seen.insert("s3");
                }
                g if g == ct => {
                    let v: Value = serde_json::from_str(m).unwrap();
                    assert_eq!(v["eventVersion"], "1.09");
                    assert_eq!(v["eventTime"].as_str().unwrap(), iso(e.ts_ms));
                    for k in [
                        "eventSource",
                        "eventName",
                        "awsRegion",
                        "sourceIPAddress",
                        "userAgent",
                    ] {
                        assert!(v[k].is_string(), "{k} in {m}");
                    }
                    assert!(v["userIdentity"]["type"].is_string());
                    assert!(
                        v.get("requestParameters").is_some() && v.get("responseElements").is_some()
                    );
                    if v["readOnly"] == true {
                        assert!(v["responseElements"].is_null());
                    }
                    assert_eq!(v["eventType"], "AwsApiCall");
                    assert_eq!(v["recipientAccountId"], s.truth.account_id.as_str());
                    assert_eq!(
                        e.stream,
                        format!("{}_CloudTrail_us-east-1", s.truth.account_id)
                    );
                    seen.insert("cloudtrail");
                }
                g if g.starts_with("/aws/lambda/") => {
                    assert!(e.stream.contains("/[$LATEST]") && e.stream.len() == 10 + 10 + 32);
                    let ok = m.starts_with("START RequestId: ") && m.ends_with(" Version: $LATEST")
                        || m.starts_with("END RequestId: ")
                        || (m.starts_with("REPORT RequestId: ") && m.ends_with('\t') && m.contains("\tBilled Duration: "))
                        || m.starts_with("INIT_START Runtime Version: nodejs:20.v31\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:")
                        || {
                            let parts: Vec<&str> = m.splitn(4, '\t').collect();
                            parts.len() == 4 && parts[0].len() == 24 && parts[1].len() == 36 && ["INFO", "ERROR"].contains(&parts[2])
                        }
                        || (m.contains(" Task timed out after ") && m.ends_with(".00 seconds"));
                    assert!(ok, "{m:?}");
                    if m.contains("\tERROR\tInvoke Error \t") {
                        let json = m.rsplit('\t').next().unwrap();
                        let v: Value = serde_json::from_str(json).unwrap();
                        assert_eq!(v["errorType"], "Error");
                    }
                    seen.insert("lambda");
                }
                g => panic!("unknown group {g}"),
            }
        }
        assert_eq!(seen.len(), 6, "{seen:?}");
    }

    #[test]
    fn incidents_and_distractors_are_well_formed() {
        for seed in 1..=5 {
            let s = generate(&SimConfig {
                seed,
                ..SimConfig::default()
            });
            let t = &s.truth;
            assert_eq!(t.incidents.len(), 4);
            assert_eq!(t.distractors.len(), 4);
            let kinds: HashSet<IncidentKind> = t.incidents.iter().map(|i| i.kind).collect();
            assert_eq!(kinds.len(), 4);
            let dkinds: HashSet<DistractorKind> = t.distractors.iter().map(|d| d.kind).collect();
            assert_eq!(dkinds.len(), 4);
            assert!(t.incidents.windows(2).all(|w| w[0].end_ms < w[1].onset_ms));
            for inc in &t.incidents {
                assert!(inc.onset_ms >= t.baseline_end_ms && inc.end_ms > inc.onset_ms);
                assert!(inc.end_ms - inc.onset_ms <= 26 * MIN, "{inc:?}");
                assert!(inc.entities.contains(&inc.main_entity));
                assert!(!inc.detail.is_empty() && !inc.remediation.is_empty());
                let hits = s
                    .events
                    .iter()
                    .filter(|e| {
                        e.ts_ms >= inc.onset_ms
                            && e.ts_ms <= inc.end_ms
                            // Host lines name the instance through their stream and Lambda lines
                            // the function through their group, as CloudWatch does.
                            && (e.message.contains(&inc.main_entity)
                                || e.stream == inc.main_entity
                                || e.group == lambda_group(&inc.main_entity))
                    })
                    .count();
                assert!(
                    hits >= 20,
                    "{:?}: only {hits} lines mention {}",
                    inc.kind,
                    inc.main_entity
                );
                for d in &t.distractors {
                    assert!(
                        d.end_ms < inc.onset_ms || d.start_ms > inc.end_ms,
                        "{d:?} overlaps {inc:?}"
                    );
                }
            }
            for d in &t.distractors {
                assert!(
                    d.start_ms >= t.baseline_end_ms && d.end_ms >= d.start_ms,
                    "{d:?}"
                );
            }
            let after = t.end_ms - t.incidents[3].end_ms.max(t.distractors[3].end_ms);
            assert!((29 * MIN..=31 * MIN).contains(&after), "{after}");
        }
    }

    #[test]
    fn incidents_look_like_incidents() {
        let s = default_scenario();
        for inc in &s.truth.incidents {
            let inside = |e: &&SimEvent| e.ts_ms >= inc.onset_ms && e.ts_ms <= inc.end_ms;
            let lines: Vec<&SimEvent> = s.events.iter().filter(inside).collect();
            let n = |needle: &str| lines.iter().filter(|e| e.message.contains(needle)).count();
            match inc.kind {
                IncidentKind::SshBruteForce => {
                    assert!(n("Failed password") >= 100);
                    assert!(
                        lines
                            .iter()
                            .filter(|e| e.group == GROUP_VPC
                                && e.message.contains(&inc.main_entity)
                                && e.message.contains("REJECT"))
                            .count()
                            >= 200
                    );
                }
                IncidentKind::LambdaTimeoutCascade => {
                    assert!(n("Task timed out after") >= 50);
                    assert!(n("ETIMEDOUT") >= 50);
                    assert!(n("INIT_START") >= 5);
                }
                IncidentKind::DiskFilling => {
                    assert!(n("WARNING disk / used=") >= 1);
                    assert!(n("used=100%") >= 1);
                    assert!(n("No space left on device") >= 3);
                }
                IncidentKind::LeakedAccessKey => {
                    let ct: Vec<&&SimEvent> = lines
                        .iter()
                        .filter(|e| e.message.contains(&inc.main_entity))
                        .collect();
                    let denied = ct
                        .iter()
                        .filter(|e| e.message.contains("\"errorCode\""))
                        .count();
                    assert!(denied >= 100, "{denied}");
                    let arn = &inc.entities[1];
                    assert!(
                        lines
                            .iter()
                            .filter(|e| e.group == GROUP_S3
                                && e.message.contains(arn)
                                && e.message.contains("REST.DELETE.OBJECT"))
                            .count()
                            >= 20
                    );
                }
            }
        }
        // Baseline noise that a detector must tolerate is present before any incident.
        let base: Vec<&SimEvent> = s
            .events
            .iter()
            .filter(|e| e.ts_ms < s.truth.baseline_end_ms)
            .collect();
        let n = |needle: &str| base.iter().filter(|e| e.message.contains(needle)).count();
        assert!(n("Failed password") > 20);
        assert!(n(" REJECT OK") > 100);
        assert!(n("NoSuchKey") > 0);
        assert!(n("AccessDenied") + n("Client.UnauthorizedOperation") > 0);
        assert!(n("Accepted publickey") > 10);
        assert!(n("\"eventName\":\"GetCallerIdentity\"") > 0);
    }

    #[test]
    fn cast_is_consistent_across_sources() {
        let s = default_scenario();
        let ct = cloudtrail_group(&s.truth.account_id);
        for m in &s.truth.cast {
            let in_ct = s.events.iter().any(|e| {
                e.group == ct && e.message.contains(&m.arn) && e.message.contains(&m.access_key)
            });
            let in_s3 = s.events.iter().any(|e| {
                e.group == GROUP_S3 && e.message.contains(&m.arn) && e.message.contains(&m.home_ip)
            });
            assert!(in_ct, "{} missing from CloudTrail", m.name);
            assert!(in_s3, "{} missing from S3 logs", m.name);
            if m.arn.contains(":user/") && m.name != "ci-deployer" {
                let login = format!("Accepted publickey for {} from {} ", m.name, m.home_ip);
                assert!(
                    s.events.iter().any(|e| e.message.contains(&login)),
                    "{} never logs in",
                    m.name
                );
            }
        }
    }

    #[test]
    fn volume_and_speed() {
        let t = std::time::Instant::now();
        let s = default_scenario();
        let took = t.elapsed();
        let hours = (s.truth.end_ms - s.truth.start_ms) as f64 / HOUR as f64;
        let base = s
            .events
            .iter()
            .filter(|e| e.ts_ms < s.truth.baseline_end_ms)
            .count() as f64;
        let per_sec = base / (6.0 * 3600.0);
        println!(
            "generated {} events over {hours:.2} h in {took:?}; baseline {per_sec:.2} lines/s ({:.0}/h), overall {:.0}/h",
            s.events.len(),
            base / 6.0,
            s.events.len() as f64 / hours
        );
        assert!(per_sec > 2.0 && per_sec < 12.0, "{per_sec}");
    }
}
