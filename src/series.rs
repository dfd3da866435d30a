//! Online anomaly detector for one regularly sampled numeric series
//! (CloudWatch metrics, per-entity log feature windows; 5-minute steps).
//!
//! Method, per row, strictly causal:
//! 1. For each time scale `k` (1, 6, 36 and 144 rows) the last `k` values are
//!    compared against a robust baseline (median, MAD) of the `baseline_rows`
//!    values that precede them. Two statistics come out of each scale: the mean
//!    signed deviation (level shift / spike) and the mean absolute deviation
//!    (burst of volatility), both in MAD units.
//! 2. Each statistic is judged against its *own* recent history: a row is
//!    anomalous when a statistic beats the largest value it reached during the
//!    last `history_rows` rows by `margin`. Judging against the series' own
//!    extremes rather than a fixed z threshold is what keeps heavy-tailed but
//!    routine behaviour (daily spikes, bursty CPU) quiet without per-series
//!    tuning.
//! 3. After a detection, further detections are suppressed for
//!    `suppress_rows`: one incident should page once.
//! 4. If the level `shift_confirm_rows` after a detection still differs from
//!    the pre-detection baseline by more than `shift_z` MADs, the series has
//!    moved to a new regime: the baseline and the statistic histories restart
//!    from the new regime (a simple change-point restart), otherwise the
//!    shift itself would dominate the histories and mask later incidents.
//! 5. Right after such a restart a statistic has (almost) no history of its
//!    own, and judging it only against the fixed `floor` raises false alarms
//!    ~180 rows after many restarts (the 144-row scale becomes evaluable with
//!    an empty history). Until a statistic has `min_history_rows` fresh
//!    values, its limit is therefore also bounded below by the extremes it had *before* the detection that
//!    led to the restart (a snapshot taken before the event's own values were
//!    recorded, so the event never masks itself). The old extremes are only a
//!    fallback: once the new regime has its own history, it alone decides, so
//!    a calmer new regime is not blinded by the old one for days.
//!    This removes only part of those alarms: the baseline itself is short
//!    (36+ rows) right after a restart, so its MAD is noisy and the long
//!    scale's statistic can still be inflated beyond the old extremes.
//!
//! The score is `r^4 / (1 + r^4)` where `r` is the largest statistic/limit
//! ratio, so it is 0.5 exactly at the limit and `THRESHOLD` is the decision.

use std::collections::VecDeque;

/// Rows scoring at or above this are detections (`r >= 1`).
pub const THRESHOLD: f64 = 0.5;

/// Scores are clamped just under the threshold while suppressed so the
/// score still carries magnitude for display without counting as a page.
const SUPPRESSED_CAP: f64 = THRESHOLD * 0.98;

/// MAD to standard deviation for Gaussian data.
const MAD_TO_SIGMA: f64 = 1.4826;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Rows in the robust baseline (288 = one day at 5-minute steps).
    pub baseline_rows: usize,
    /// Minimum baseline rows before a scale is evaluated.
    pub min_baseline_rows: usize,
    /// How far back a statistic's running maximum reaches (1152 = four days).
    pub history_rows: usize,
    /// Aggregation lengths in rows.
    pub scales: Vec<usize>,
    /// Rows observed (after start or a regime restart) before any detection.
    pub warmup_rows: usize,
    /// Rows after a detection during which no new detection is raised.
    pub suppress_rows: usize,
    /// Factor by which a statistic must beat its recent maximum.
    pub margin: f64,
    /// Lower bound (in MAD units, at scale 1) for the recent maximum, so a
    /// perfectly flat history does not turn noise into detections.
    pub floor: f64,
    /// Scale floor relative to |median|, for series that are nearly constant.
    pub rel_scale_floor: f64,
    /// Rows after a detection at which a level change is confirmed; 0 disables.
    pub shift_confirm_rows: usize,
    /// Level change (in pre-detection MAD units) that counts as a new regime.
    pub shift_z: f64,
    /// After a regime restart, a statistic with fewer fresh history values
    /// than this is also judged against its pre-detection extremes (see
    /// step 5 of the module docs). 36 rows = 3 hours at 5-minute steps, a
    /// quarter of the warm-up; results are flat for 1..36 on NAB.
    pub min_history_rows: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            baseline_rows: 288,
            min_baseline_rows: 36,
            history_rows: 1152,
            scales: vec![1, 6, 36, 144],
            warmup_rows: 144,
            suppress_rows: 108,
            margin: 1.05,
            floor: 4.0,
            rel_scale_floor: 0.01,
            shift_confirm_rows: 24,
            shift_z: 3.0,
            min_history_rows: 36,
        }
    }
}

fn median(buf: &mut [f64]) -> f64 {
    if buf.is_empty() {
        return 0.0;
    }
    let mid = buf.len() / 2;
    let (_, m, _) = buf.select_nth_unstable_by(mid, f64::total_cmp);
    *m
}

/// Sliding-window maximum (monotonic deque) over the last `cap` pushes.
#[derive(Debug, Clone, Default)]
struct SlidingMax {
    /// (push index, value), values strictly decreasing front to back.
    deque: VecDeque<(u64, f64)>,
    pushed: u64,
    /// Pushes since the last clear.
    count: usize,
}

impl SlidingMax {
    fn max(&self) -> f64 {
        self.deque.front().map_or(0.0, |&(_, v)| v)
    }

    fn push(&mut self, v: f64, cap: usize) {
        while self.deque.back().is_some_and(|&(_, b)| b <= v) {
            self.deque.pop_back();
        }
        self.deque.push_back((self.pushed, v));
        self.pushed += 1;
        self.count += 1;
        let oldest = self.pushed.saturating_sub(cap as u64);
        while self.deque.front().is_some_and(|&(i, _)| i < oldest) {
            self.deque.pop_front();
        }
    }

    fn clear(&mut self) {
        self.deque.clear();
        self.count = 0;
    }
}

#[derive(Debug, Clone)]
pub struct Detector {
    cfg: Config,
    /// Recent values, newest last; bounded by baseline + largest scale.
    values: VecDeque<f64>,
    /// Rows since start or the last regime restart.
    seen: usize,
    /// Two statistics (level, volatility) per scale.
    history: Vec<SlidingMax>,
    since_detection: usize,
    /// Baseline (median, scale) just before the last detection.
    pre_detection: Option<(f64, f64)>,
    scratch: Vec<f64>,
    /// (statistic index, value) computed for the current row, recorded into
    /// the histories only after the detection decision.
    pending: Vec<(usize, f64)>,
    /// Histories as they were just before the last detection.
    pre_detection_history: Option<Vec<SlidingMax>>,
    /// Pre-detection histories of the event that caused the last regime
    /// restart; a fallback limit while the fresh histories are short.
    fallback: Option<Vec<SlidingMax>>,
}

impl Detector {
    pub fn new(cfg: Config) -> Self {
        let stats = cfg.scales.len() * 2;
        Self {
            cfg,
            values: VecDeque::new(),
            seen: 0,
            history: vec![SlidingMax::default(); stats],
            since_detection: usize::MAX,
            pre_detection: None,
            scratch: Vec::new(),
            pending: Vec::new(),
            pre_detection_history: None,
            fallback: None,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn baseline(&mut self, from: usize, to: usize) -> (f64, f64) {
        self.scratch.clear();
        self.scratch.extend(self.values.range(from..to).copied());
        let m = median(&mut self.scratch);
        for v in self.scratch.iter_mut() {
            *v = (*v - m).abs();
        }
        let mad = median(&mut self.scratch) * MAD_TO_SIGMA;
        (m, mad.max(self.cfg.rel_scale_floor * m.abs()).max(1e-9))
    }

    /// Feeds one row and returns its anomaly score in `[0, 1]`; rows scoring
    /// `>= THRESHOLD` are detections. Rows are assumed evenly spaced, so the
    /// timestamp is not used; non-finite values are ignored (score 0).
    pub fn observe(&mut self, _ts_ms: i64, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let max_scale = self.cfg.scales.iter().copied().max().unwrap_or(1);
        self.values.push_back(value);
        while self.values.len() > self.cfg.baseline_rows + max_scale {
            self.values.pop_front();
        }
        self.seen += 1;
        self.maybe_restart_regime();

        let n = self.values.len();
        let mut ratio: f64 = 0.0;
        self.pending.clear();
        for si in 0..self.cfg.scales.len() {
            let k = self.cfg.scales[si].max(1);
            if n < k + self.cfg.min_baseline_rows {
                continue;
            }
            let to = n - k;
            let from = to.saturating_sub(self.cfg.baseline_rows);
            let (m, scale) = self.baseline(from, to);
            let (mut level, mut volatility) = (0.0, 0.0);
            for v in self.values.range(to..n) {
                let z = (v - m) / scale;
                level += z;
                volatility += z.abs();
            }
            let kf = k as f64;
            // At k = 1 both statistics are |z|; the volatility one would only
            // duplicate it.
            let stats = [(level / kf).abs(), volatility / kf];
            // Means of k roughly independent deviations shrink like sqrt(k).
            let floor = self.cfg.floor / kf.sqrt();
            for (j, stat) in stats.into_iter().enumerate() {
                let i = si * 2 + j;
                let h = &self.history[i];
                let mut limit = h.max().max(floor);
                if h.count < self.cfg.min_history_rows
                    && let Some(old) = &self.fallback
                {
                    limit = limit.max(old[i].max());
                }
                let r = stat / (self.cfg.margin * limit);
                if j == 0 || k > 1 {
                    ratio = ratio.max(r);
                }
                self.pending.push((i, stat));
            }
        }
        if self.seen < self.cfg.warmup_rows {
            ratio = 0.0;
        }
        let r4 = ratio.powi(4);
        let mut score = if r4.is_finite() { r4 / (1.0 + r4) } else { 1.0 };
        if self.since_detection < self.cfg.suppress_rows {
            score = score.min(SUPPRESSED_CAP);
        }
        let detected = score >= THRESHOLD;
        if detected {
            // Before this row's (anomalous) values enter the histories.
            self.pre_detection_history = Some(self.history.clone());
        }
        // The first half of the warm-up only fills the baseline; its
        // statistics are too noisy to define "normal extremes".
        if self.seen > self.cfg.warmup_rows / 2 {
            for &(i, stat) in &self.pending {
                self.history[i].push(stat, self.cfg.history_rows);
            }
        }
        if detected {
            self.since_detection = 0;
            if n > 1 {
                let from = (n - 1).saturating_sub(self.cfg.baseline_rows);
                self.pre_detection = Some(self.baseline(from, n - 1));
            }
        } else {
            self.since_detection = self.since_detection.saturating_add(1);
        }
        score
    }

    /// Restarts baseline and histories when the level after a detection has
    /// stayed away from the pre-detection level.
    fn maybe_restart_regime(&mut self) {
        let confirm = self.cfg.shift_confirm_rows;
        if confirm == 0 || self.since_detection.saturating_add(1) != confirm {
            return;
        }
        let Some((m0, s0)) = self.pre_detection else {
            return;
        };
        let n = self.values.len();
        let since = confirm.min(n);
        self.scratch.clear();
        self.scratch
            .extend(self.values.range(n - since..n).copied());
        let m1 = median(&mut self.scratch);
        if ((m1 - m0) / s0).abs() <= self.cfg.shift_z {
            return;
        }
        let keep = (since + 1).min(n);
        self.values.drain(..n - keep);
        for h in self.history.iter_mut() {
            h.clear();
        }
        self.fallback = self.pre_detection_history.take();
        self.seen = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: i64 = 300_000;

    /// Deterministic noise (64-bit LCG) so tests need no RNG crate.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        }
    }

    fn run(values: &[f64]) -> Vec<f64> {
        let mut d = Detector::new(Config::default());
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| d.observe(i as i64 * STEP, v))
            .collect()
    }

    fn noisy(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = Lcg(seed);
        (0..n).map(|_| 50.0 + 4.0 * rng.next()).collect()
    }

    fn detections(scores: &[f64]) -> Vec<usize> {
        (0..scores.len())
            .filter(|&i| scores[i] >= THRESHOLD)
            .collect()
    }

    #[test]
    fn scores_are_bounded_and_deterministic() {
        let v = noisy(2000, 7);
        let a = run(&v);
        assert_eq!(a, run(&v));
        assert!(a.iter().all(|s| (0.0..=1.0).contains(s)));
    }

    #[test]
    fn stationary_noise_is_quiet() {
        let s = run(&noisy(3000, 11));
        assert!(detections(&s).len() <= 2, "{:?}", detections(&s));
    }

    #[test]
    fn spike_is_detected_once() {
        let mut v = noisy(2000, 3);
        v[1500] = 200.0;
        v[1501] = 190.0;
        let d = detections(&run(&v));
        assert!(d.contains(&1500), "{d:?}");
        assert!(!d.contains(&1501));
    }

    #[test]
    fn no_detection_during_warmup() {
        let mut v = noisy(400, 5);
        v[100] = 1000.0;
        let s = run(&v);
        assert!(
            s[..Config::default().warmup_rows]
                .iter()
                .all(|&x| x < THRESHOLD)
        );
    }

    #[test]
    fn level_shift_then_later_spike_both_detected() {
        let mut v = noisy(3000, 9);
        for x in v.iter_mut().skip(1200) {
            *x += 40.0;
        }
        v[1900] += 30.0;
        let d = detections(&run(&v));
        assert!(d.iter().any(|&i| (1200..1210).contains(&i)), "{d:?}");
        assert!(d.contains(&1900), "{d:?}");
    }

    #[test]
    fn volatility_burst_is_detected() {
        let mut rng = Lcg(13);
        let mut v = noisy(2500, 1);
        for x in v.iter_mut().skip(2000).take(100) {
            *x += 30.0 * rng.next();
        }
        let d = detections(&run(&v));
        assert!(d.iter().any(|&i| (2000..2100).contains(&i)), "{d:?}");
    }

    #[test]
    fn bad_values_do_not_panic() {
        let mut d = Detector::new(Config::default());
        for (i, v) in [f64::NAN, f64::INFINITY, 0.0, -0.0, f64::MAX, f64::MIN]
            .iter()
            .cycle()
            .take(600)
            .enumerate()
        {
            let s = d.observe(i as i64 * STEP, *v);
            assert!((0.0..=1.0).contains(&s));
        }
        // Constant series: zero MAD must not divide by zero.
        let s = run(&[0.0; 600]);
        assert!(s.iter().all(|&x| x == 0.0));
    }
}
