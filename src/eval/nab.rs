//! NAB (Numenta Anomaly Benchmark v1.1) scoring for a fixed detection threshold.
//!
//! Mirrors `nab/sweeper.py` (`calcSweepScore`, `calcScoreByThreshold`,
//! `scoreDataSet`), `nab/labeler.py` (inclusive windows) and the corpus-level
//! normalisation in `nab/runner.py`, so numbers are comparable with the
//! published NAB scoreboard.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// What went wrong reading a NAB directory; the text names the file and the problem.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0}. Point --data at a NAB-layout directory (data/<category>/*.csv, labels/combined_windows.json)."
)]
pub struct NabError(pub String);

impl From<String> for NabError {
    fn from(s: String) -> Self {
        NabError(s)
    }
}

/// NAB's probationary fraction of each file.
pub const PROBATION_PERCENT: f64 = 0.15;

/// Cost weights of one NAB application profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub tp_weight: f64,
    pub fp_weight: f64,
    pub fn_weight: f64,
}

impl Profile {
    pub fn new(name: &str, tp_weight: f64, fp_weight: f64, fn_weight: f64) -> Self {
        Self {
            name: name.to_string(),
            tp_weight,
            fp_weight,
            fn_weight,
        }
    }

    /// The three profiles of NAB v1.1 `config/profiles.json`, used when the
    /// file is absent so the scorer still works on a bare data directory.
    pub fn defaults() -> Vec<Profile> {
        vec![
            Profile::new("standard", 1.0, 0.11, 1.0),
            Profile::new("reward_low_FP_rate", 1.0, 0.22, 1.0),
            Profile::new("reward_low_FN_rate", 1.0, 0.11, 2.0),
        ]
    }
}

/// Parses NAB's `profiles.json` (`{name: {"CostMatrix": {...}}}`).
pub fn parse_profiles(text: &str) -> Result<Vec<Profile>, NabError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("profiles.json: {e}"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| "profiles.json: top level is not an object".to_string())?;
    let mut out = Vec::new();
    for (name, body) in obj {
        let cm = body
            .get("CostMatrix")
            .ok_or_else(|| format!("profiles.json: {name} has no CostMatrix"))?;
        let get = |k: &str| -> Result<f64, String> {
            cm.get(k)
                .and_then(serde_json::Value::as_f64)
                .ok_or_else(|| format!("profiles.json: {name}.{k} missing or not a number"))
        };
        out.push(Profile::new(
            name,
            get("tpWeight")?,
            get("fpWeight")?,
            get("fnWeight")?,
        ));
    }
    // Keep the conventional NAB order so reports are stable.
    let rank = |n: &str| match n {
        "standard" => 0,
        "reward_low_FP_rate" => 1,
        "reward_low_FN_rate" => 2,
        _ => 3,
    };
    out.sort_by(|a, b| rank(&a.name).cmp(&rank(&b.name)).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// Loads `config/profiles.json` under a NAB dir, falling back to the built-in
/// v1.1 values.
pub fn load_profiles(nab_dir: &Path) -> Result<Vec<Profile>, NabError> {
    let path = nab_dir.join("config").join("profiles.json");
    match fs::read_to_string(&path) {
        Ok(text) => parse_profiles(&text),
        Err(_) => Ok(Profile::defaults()),
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS[.ffffff]` (also `T` separator) into epoch
/// milliseconds (UTC; NAB timestamps carry no zone).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    // NAB writes `YYYY-MM-DD HH:MM:SS[.ffffff]`; a bare date means midnight.
    crate::timefmt::parse_iso(s).or_else(|| crate::timefmt::parse_iso(&format!("{s} 00:00:00")))
}

/// One `timestamp,value` file as read from disk.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
    /// Rows that could not be parsed and were dropped.
    pub skipped_rows: usize,
}

/// Reads a NAB data file. Malformed rows are skipped and counted rather than
/// aborting, because live metric exports can contain partial lines.
pub fn read_series(path: &Path) -> Result<Series, NabError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_path(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Series::default();
    for rec in rdr.records() {
        let Ok(rec) = rec else {
            out.skipped_rows += 1;
            continue;
        };
        let ts = rec.get(0).and_then(parse_timestamp);
        let v = rec
            .get(1)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite());
        match (ts, v) {
            (Some(ts), Some(v)) => {
                out.timestamps.push(ts);
                out.values.push(v);
            }
            _ => out.skipped_rows += 1,
        }
    }
    Ok(out)
}

/// Parses `combined_windows.json` into `relative path -> [(start_ms, end_ms)]`.
pub fn parse_windows(text: &str) -> Result<BTreeMap<String, Vec<(i64, i64)>>, NabError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("windows json: {e}"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| "windows json: top level is not an object".to_string())?;
    let mut out = BTreeMap::new();
    for (file, wins) in obj {
        let arr = wins
            .as_array()
            .ok_or_else(|| format!("windows json: {file} is not a list"))?;
        let mut ws = Vec::with_capacity(arr.len());
        for w in arr {
            let pair = w
                .as_array()
                .filter(|p| p.len() == 2)
                .ok_or_else(|| format!("windows json: {file} has a malformed window"))?;
            let ts = |i: usize| {
                pair[i]
                    .as_str()
                    .and_then(parse_timestamp)
                    .ok_or_else(|| format!("windows json: {file} has a bad timestamp"))
            };
            ws.push((ts(0)?, ts(1)?));
        }
        ws.sort_unstable();
        out.insert(file.clone(), ws);
    }
    Ok(out)
}

/// `min(floor(0.15 * n), 0.15 * 5000)` exactly as in `sweeper.py`.
pub fn probationary_length(n_rows: usize) -> usize {
    let p = (PROBATION_PERCENT * n_rows as f64).floor();
    p.min(PROBATION_PERCENT * 5000.0) as usize
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// NAB's reward curve: ~+1 at the start of a window, 0 at its right edge,
/// falling to -1 three window-widths after it.
pub fn scaled_sigmoid(relative_position: f64) -> f64 {
    if relative_position > 3.0 {
        -1.0
    } else {
        2.0 * sigmoid(-5.0 * relative_position) - 1.0
    }
}

/// Per-row annotation produced by `calcSweepScore`, before thresholding.
#[derive(Debug, Clone, Copy)]
struct SweepPoint {
    /// Index into the file's windows, if the row lies inside one.
    window: Option<usize>,
    probationary: bool,
    /// Profile-weighted contribution if this row is a detection.
    weighted: f64,
}

/// Row index ranges `[left, right]` of each window that contains rows.
/// Windows are inclusive on both ends (labeler.py uses `>= t1` and `<= t2`).
fn window_ranges(timestamps: &[i64], windows: &[(i64, i64)]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &(start, end) in windows {
        let left = timestamps.partition_point(|&t| t < start);
        let right_excl = timestamps.partition_point(|&t| t <= end);
        if right_excl == 0 || left >= right_excl {
            continue;
        }
        let right = right_excl - 1;
        // Overlapping windows cannot be entered by NAB's sweep either, since it
        // only looks for the next window's start once the current one closes.
        if out.last().is_some_and(|&(_, r)| left <= r) {
            continue;
        }
        out.push((left, right));
    }
    out
}

fn sweep(timestamps: &[i64], windows: &[(usize, usize)], profile: &Profile) -> Vec<SweepPoint> {
    let max_tp = scaled_sigmoid(-1.0);
    let probation = probationary_length(timestamps.len());
    let mut out = Vec::with_capacity(timestamps.len());
    let mut next_window = 0usize;
    let mut current: Option<usize> = None;
    // (right index, width) of the most recently closed window.
    let mut previous: Option<(usize, f64)> = None;
    for i in 0..timestamps.len() {
        if current.is_none() && windows.get(next_window).is_some_and(|w| w.0 == i) {
            current = Some(next_window);
            next_window += 1;
        }
        let weighted = match current {
            Some(w) => {
                let (left, right) = windows[w];
                let width = (right - left + 1) as f64;
                let position = -((right as f64) - (i as f64) + 1.0) / width;
                scaled_sigmoid(position) * profile.tp_weight / max_tp
            }
            None => {
                let unweighted = match previous {
                    None => -1.0,
                    Some((prev_right, prev_width)) => {
                        let numerator = (i as f64 - prev_right as f64).abs();
                        let denominator = prev_width - 1.0;
                        // A one-row window would divide by zero in NAB; treat any
                        // distance past it as far away.
                        if denominator <= 0.0 {
                            -1.0
                        } else {
                            scaled_sigmoid(numerator / denominator)
                        }
                    }
                };
                unweighted * profile.fp_weight
            }
        };
        out.push(SweepPoint {
            window: current,
            probationary: i < probation,
            weighted,
        });
        if let Some(w) = current
            && windows[w].1 == i
        {
            let (left, right) = windows[w];
            previous = Some((right, (right - left + 1) as f64));
            current = None;
        }
    }
    out
}

/// Result of scoring one file at one threshold under one profile.
#[derive(Debug, Clone, Default)]
pub struct FileScore {
    /// NAB raw score of the detector.
    pub raw: f64,
    /// Raw score of the null detector (no detections).
    pub null: f64,
    /// Raw score of the perfect detector (label column as scores).
    pub perfect: f64,
    /// Scored windows (those with at least one row past probation).
    pub windows: usize,
    /// Windows with at least one detection.
    pub detected_windows: usize,
    /// Windows without a detection.
    pub missed_windows: usize,
    /// Detections outside any window (scored rows only).
    pub fp_detections: usize,
    /// Detections inside windows (NAB's point-level TP count).
    pub tp_points: usize,
    /// Row indices of false-positive detections with their weighted cost.
    pub fp_rows: Vec<(usize, f64)>,
    /// Per window: `(left row, right row, first detection row if any)`.
    pub window_detail: Vec<(usize, usize, Option<usize>)>,
}

fn score_points(
    points: &[SweepPoint],
    windows: &[(usize, usize)],
    detected: &dyn Fn(usize) -> bool,
    profile: &Profile,
) -> FileScore {
    let mut best: Vec<Option<(f64, usize)>> = vec![None; windows.len()];
    let mut scored = vec![false; windows.len()];
    let mut fs = FileScore::default();
    let mut fp_total = 0.0;
    for (i, p) in points.iter().enumerate() {
        if p.probationary {
            continue;
        }
        if let Some(w) = p.window {
            scored[w] = true;
        }
        if !detected(i) {
            continue;
        }
        match p.window {
            Some(w) => {
                fs.tp_points += 1;
                // The earliest detection has the largest reward, which is what
                // NAB keeps when it sweeps points by descending anomaly score.
                if best[w].is_none_or(|(s, _)| p.weighted > s) {
                    best[w] = Some((p.weighted, i));
                }
            }
            None => {
                fs.fp_detections += 1;
                fp_total += p.weighted;
                fs.fp_rows.push((i, p.weighted));
            }
        }
    }
    let mut raw = fp_total;
    for (w, &(l, r)) in windows.iter().enumerate() {
        if !scored[w] {
            continue;
        }
        fs.windows += 1;
        match best[w] {
            Some((s, row)) => {
                fs.detected_windows += 1;
                raw += s;
                fs.window_detail.push((l, r, Some(row)));
            }
            None => {
                fs.missed_windows += 1;
                raw -= profile.fn_weight;
                fs.window_detail.push((l, r, None));
            }
        }
    }
    fs.raw = raw;
    fs
}

/// Scores one file: rows with `anomaly_scores[i] >= threshold` are detections.
/// `timestamps` must be sorted ascending and aligned with `anomaly_scores`.
pub fn score_file(
    timestamps: &[i64],
    anomaly_scores: &[f64],
    windows: &[(i64, i64)],
    threshold: f64,
    profile: &Profile,
) -> FileScore {
    let n = timestamps.len().min(anomaly_scores.len());
    let timestamps = &timestamps[..n];
    let ranges = window_ranges(timestamps, windows);
    let points = sweep(timestamps, &ranges, profile);
    let mut fs = score_points(
        &points,
        &ranges,
        &|i| anomaly_scores[i] >= threshold,
        profile,
    );
    fs.null = -profile.fn_weight * fs.windows as f64;
    let perfect = score_points(&points, &ranges, &|i| points[i].window.is_some(), profile);
    fs.perfect = perfect.raw;
    fs
}

/// Corpus-level normalisation as in NAB's runner: sums first, then scale.
pub fn normalized(raw: f64, null: f64, perfect: f64) -> f64 {
    let span = perfect - null;
    if span.abs() < f64::EPSILON {
        0.0
    } else {
        100.0 * (raw - null) / span
    }
}

/// Data files of a NAB directory as `(relative path "cat/file.csv", full path)`.
/// `categories` restricts the walk; an empty slice means all categories.
pub fn list_data_files(
    nab_dir: &Path,
    categories: &[String],
) -> Result<Vec<(String, PathBuf)>, NabError> {
    let data = nab_dir.join("data");
    let mut out = Vec::new();
    let rd = fs::read_dir(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    let mut cats: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    cats.sort();
    for cat in cats {
        let Some(cat_name) = cat.file_name().and_then(|s| s.to_str()).map(str::to_string) else {
            continue;
        };
        if !categories.is_empty() && !categories.contains(&cat_name) {
            continue;
        }
        let Ok(files) = fs::read_dir(&cat) else {
            continue;
        };
        let mut files: Vec<PathBuf> = files
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        files.sort();
        for f in files {
            if let Some(name) = f.file_name().and_then(|s| s.to_str()) {
                out.push((format!("{cat_name}/{name}"), f.clone()));
            }
        }
    }
    Ok(out)
}

/// One data file's result under the chosen profile.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileResult {
    pub file: String,
    pub rows: usize,
    /// `None` when the directory has no labels for the file.
    pub raw: Option<f64>,
    pub windows: usize,
    pub detected_windows: usize,
    pub false_positives: usize,
}

/// `stormwatch eval nab`'s document.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NabEval {
    pub profile: String,
    pub threshold: f64,
    /// Normalised score over `realAWSCloudwatch` (the bar), `None` without labels.
    pub aws_score: Option<f64>,
    /// Normalised score per category.
    pub categories: BTreeMap<String, Option<f64>>,
    pub files: Vec<FileResult>,
    pub elapsed_s: f64,
}

#[derive(Default, Clone, Copy)]
struct Totals {
    raw: f64,
    null: f64,
    perfect: f64,
    labelled: bool,
}

/// Runs one fresh [`crate::series::Detector`] per data file of `nab_dir` and scores its
/// detections (rows at or above the fixed [`crate::series::THRESHOLD`]) with `profile`.
/// `emit` receives NAB's results layout so NAB's own scorer can check the same detections.
pub fn run(nab_dir: &Path, profile: &str, emit: Option<&Path>) -> Result<NabEval, NabError> {
    use crate::series::{Config, Detector, THRESHOLD};
    let started = std::time::Instant::now();
    let profiles = load_profiles(nab_dir).unwrap_or_else(|_| Profile::defaults());
    let prof = profiles
        .iter()
        .find(|p| p.name == profile)
        .cloned()
        .ok_or_else(|| {
            NabError(format!(
                "unknown profile {profile}; use standard, reward_low_FP_rate or reward_low_FN_rate"
            ))
        })?;
    // Without labels (a copy made only for --emit) scores are null.
    let windows = fs::read_to_string(nab_dir.join("labels/combined_windows.json"))
        .ok()
        .map(|t| parse_windows(&t))
        .transpose()?;
    let mut files = Vec::new();
    let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
    for (rel, path) in list_data_files(nab_dir, &[])? {
        let series = read_series(&path)?;
        let mut det = Detector::new(Config::default());
        let scores: Vec<f64> = series
            .timestamps
            .iter()
            .zip(&series.values)
            .map(|(&t, &v)| det.observe(t, v))
            .collect();
        if let Some(out) = emit {
            write_results(
                out,
                &rel,
                &series,
                &scores,
                windows.as_ref().and_then(|w| w.get(&rel)),
            )?;
        }
        let category = rel.split('/').next().unwrap_or("").to_string();
        let t = totals.entry(category).or_default();
        let fs_ = windows
            .as_ref()
            .and_then(|w| w.get(&rel))
            .map(|w| score_file(&series.timestamps, &scores, w, THRESHOLD, &prof));
        if let Some(f) = &fs_ {
            t.raw += f.raw;
            t.null += f.null;
            t.perfect += f.perfect;
            t.labelled = true;
        }
        files.push(FileResult {
            file: rel,
            rows: series.values.len(),
            raw: fs_.as_ref().map(|f| f.raw),
            windows: fs_.as_ref().map_or(0, |f| f.windows),
            detected_windows: fs_.as_ref().map_or(0, |f| f.detected_windows),
            false_positives: fs_.as_ref().map_or(0, |f| f.fp_detections),
        });
    }
    let categories: BTreeMap<String, Option<f64>> = totals
        .iter()
        .map(|(c, t)| {
            (
                c.clone(),
                t.labelled.then(|| normalized(t.raw, t.null, t.perfect)),
            )
        })
        .collect();
    Ok(NabEval {
        profile: prof.name.clone(),
        threshold: THRESHOLD,
        aws_score: categories.get("realAWSCloudwatch").copied().flatten(),
        categories,
        files,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

/// `OUT/stormwatch/<category>/stormwatch_<file>.csv` with `timestamp,value,anomaly_score,label`.
fn write_results(
    out: &Path,
    rel: &str,
    series: &Series,
    scores: &[f64],
    windows: Option<&Vec<(i64, i64)>>,
) -> Result<(), NabError> {
    let (category, file) = rel.split_once('/').unwrap_or(("", rel));
    let dir = out.join("stormwatch").join(category);
    let path = dir.join(format!("stormwatch_{file}"));
    let werr = |e: std::io::Error| NabError(format!("cannot write {}: {e}", path.display()));
    fs::create_dir_all(&dir).map_err(werr)?;
    let mut text = String::from("timestamp,value,anomaly_score,label\n");
    for ((t, v), s) in series.timestamps.iter().zip(&series.values).zip(scores) {
        let label = windows.is_some_and(|w| w.iter().any(|(a, b)| a <= t && t <= b));
        text.push_str(&format!(
            "{},{v},{s},{}\n",
            nab_timestamp(*t),
            u8::from(label)
        ));
    }
    fs::write(&path, text).map_err(werr)
}

/// NAB's timestamp form, `YYYY-MM-DD HH:MM:SS`.
fn nab_timestamp(ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = crate::timefmt::parts(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

impl NabEval {
    pub fn render(&self) -> String {
        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.2}"));
        let mut s = format!(
            "{:<62} {:>6} {:>9} {:>8} {:>4}\n",
            "file", "rows", "raw", "windows", "FP"
        );
        for r in &self.files {
            s.push_str(&format!(
                "{:<62} {:>6} {:>9} {:>4}/{:<3} {:>4}\n",
                r.file,
                r.rows,
                f(r.raw),
                r.detected_windows,
                r.windows,
                r.false_positives
            ));
        }
        for (c, v) in &self.categories {
            s.push_str(&format!(
                "{c}: normalised {} score {}\n",
                self.profile,
                f(*v)
            ));
        }
        s.push_str(&format!(
            "threshold {} (fixed), {:.1} s\n",
            self.threshold, self.elapsed_s
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: i64 = 300_000;

    fn series(n: usize) -> Vec<i64> {
        (0..n as i64)
            .map(|i| 1_000_000_000_000 + i * STEP)
            .collect()
    }

    fn win(ts: &[i64], l: usize, r: usize) -> (i64, i64) {
        (ts[l], ts[r])
    }

    fn standard() -> Profile {
        Profile::defaults().remove(0)
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_timestamp("2014-02-19 10:50:00.000000"),
            parse_timestamp("2014-02-19 10:50:00")
        );
        assert_eq!(
            parse_timestamp("2014-02-19 10:50:00"),
            Some(1_392_807_000_000)
        );
        assert_eq!(parse_timestamp("garbage"), None);
        assert_eq!(parse_timestamp("2014-13-01 00:00:00"), None);
    }

    #[test]
    fn probation_matches_nab() {
        assert_eq!(probationary_length(4032), 604);
        assert_eq!(probationary_length(1243), 186);
        assert_eq!(probationary_length(22695), 750);
    }

    #[test]
    fn null_detector_scores_zero() {
        let ts = series(1000);
        let windows = vec![win(&ts, 300, 350), win(&ts, 700, 760)];
        let scores = vec![0.0; ts.len()];
        let fs = score_file(&ts, &scores, &windows, 0.5, &standard());
        assert_eq!(fs.raw, -2.0);
        assert_eq!(fs.null, -2.0);
        assert!((fs.perfect - 2.0).abs() < 1e-12);
        assert_eq!(normalized(fs.raw, fs.null, fs.perfect), 0.0);
    }

    #[test]
    fn perfect_detector_scores_hundred() {
        let ts = series(1000);
        let windows = vec![win(&ts, 300, 350), win(&ts, 700, 760)];
        let mut scores = vec![0.0; ts.len()];
        scores[300] = 1.0;
        scores[700] = 1.0;
        for p in Profile::defaults() {
            let fs = score_file(&ts, &scores, &windows, 0.5, &p);
            assert!((fs.raw - 2.0 * p.tp_weight).abs() < 1e-12, "{}", fs.raw);
            assert!((normalized(fs.raw, fs.null, fs.perfect) - 100.0).abs() < 1e-9);
        }
    }

    #[test]
    fn later_detection_in_window_earns_less_and_only_first_counts() {
        let ts = series(1000);
        let windows = vec![win(&ts, 300, 399)];
        let p = standard();
        let mut early = vec![0.0; ts.len()];
        early[310] = 1.0;
        let mut late = vec![0.0; ts.len()];
        late[390] = 1.0;
        let e = score_file(&ts, &early, &windows, 0.5, &p).raw;
        let l = score_file(&ts, &late, &windows, 0.5, &p).raw;
        assert!(e > l && l > 0.0);
        let mut both = early.clone();
        both[390] = 1.0;
        let b = score_file(&ts, &both, &windows, 0.5, &p);
        assert_eq!(b.raw, e);
        assert_eq!(b.tp_points, 2);
        // Window end: position -1/width.
        let mut last = vec![0.0; ts.len()];
        last[399] = 1.0;
        let expect = scaled_sigmoid(-1.0 / 100.0) / scaled_sigmoid(-1.0);
        assert!((score_file(&ts, &last, &windows, 0.5, &p).raw - expect).abs() < 1e-12);
    }

    #[test]
    fn detection_outside_windows_is_penalised() {
        let ts = series(1000);
        let windows = vec![win(&ts, 300, 350), win(&ts, 700, 760)];
        let p = standard();
        let mut scores = vec![0.0; ts.len()];
        scores[300] = 1.0;
        scores[700] = 1.0;
        let base = score_file(&ts, &scores, &windows, 0.5, &p).raw;
        // Before the first window: full fpWeight.
        let mut before = scores.clone();
        before[200] = 1.0;
        let fs = score_file(&ts, &before, &windows, 0.5, &p);
        assert!((fs.raw - (base - 0.11)).abs() < 1e-12);
        assert_eq!(fs.fp_detections, 1);
        // Just after a window: small penalty by NAB's formula.
        let mut after = scores.clone();
        after[355] = 1.0;
        let got = score_file(&ts, &after, &windows, 0.5, &p).raw;
        let expect = base + 0.11 * scaled_sigmoid(5.0 / 50.0);
        assert!((got - expect).abs() < 1e-12);
        assert!(got < base);
        // More than three widths past: full penalty.
        let mut far = scores.clone();
        far[600] = 1.0;
        let got = score_file(&ts, &far, &windows, 0.5, &p).raw;
        assert!((got - (base - 0.11)).abs() < 1e-12);
    }

    #[test]
    fn probation_rows_are_ignored() {
        let ts = series(1000);
        let windows = vec![win(&ts, 300, 350)];
        let p = standard();
        let mut scores = vec![0.0; ts.len()];
        // probation = 150 rows
        for s in scores.iter_mut().take(150) {
            *s = 1.0;
        }
        let fs = score_file(&ts, &scores, &windows, 0.5, &p);
        assert_eq!(fs.raw, -1.0);
        assert_eq!(fs.fp_detections, 0);
        scores[150] = 1.0;
        let fs = score_file(&ts, &scores, &windows, 0.5, &p);
        assert!((fs.raw - (-1.11)).abs() < 1e-12);
    }

    #[test]
    fn threshold_is_inclusive() {
        let ts = series(1000);
        let windows = vec![win(&ts, 300, 350)];
        let mut scores = vec![0.0; ts.len()];
        scores[300] = 0.5;
        let fs = score_file(&ts, &scores, &windows, 0.5, &standard());
        assert!((fs.raw - 1.0).abs() < 1e-12);
    }

    #[test]
    fn profiles_parse() {
        let text = r#"{"standard":{"CostMatrix":{"tpWeight":1.0,"fnWeight":1.0,"fpWeight":0.11,"tnWeight":1.0}},
            "reward_low_FN_rate":{"CostMatrix":{"tpWeight":1.0,"fnWeight":2.0,"fpWeight":0.11,"tnWeight":1.0}}}"#;
        let ps = parse_profiles(text).expect("valid json");
        assert_eq!(ps[0].name, "standard");
        assert_eq!(ps[1].fn_weight, 2.0);
        assert!(parse_profiles("[]").is_err());
    }

    #[test]
    fn windows_parse() {
        let text = r#"{"a/b.csv": [["2014-02-19 10:50:00.000000", "2014-02-20 03:30:00.000000"]], "a/c.csv": []}"#;
        let w = parse_windows(text).expect("valid json");
        assert_eq!(w["a/b.csv"].len(), 1);
        assert!(w["a/c.csv"].is_empty());
    }
}
