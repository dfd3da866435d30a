//! Forecast deviation for one seasonal numeric series: how far a sample lies from what the
//! series' own daily pattern and trend predicted for it.
//!
//! The model is augurs' MSTL (a LOESS decomposition into a daily component and a
//! deseasonalised rest) with an automatically chosen exponential-smoothing model (AutoETS)
//! forecasting the rest. It is refitted every [`REFIT_FRACTION`] of a day on the last
//! [`HISTORY_DAYS`] days and forecasts up to the next refit, with a prediction interval at
//! [`LEVEL`]. A sample is then judged before it joins the history, so a forecast never sees the
//! value it is judged on.
//!
//! Why it exists next to [`crate::series::Detector`]: the series detector says *that* a series
//! is unusual for itself; the forecast says *what value was expected now* — at this time of day,
//! on this trend — and how wide the normal band is. The console shows that as the expected
//! value, with the band and the deviation in standard deviations.
//!
//! The model's own band is too narrow: with two or three days of history the decomposition's
//! daily component absorbs part of the noise, so in-sample residuals understate the error of a
//! real forecast (on a noisy daily sine, 88 % of samples fell inside a 99 % band). The band is
//! therefore rescaled by the forecaster's own recent out-of-sample errors: the median absolute
//! standardised error over the last day, against a normal's. The median keeps an incident's
//! errors from widening the band that judges it.
//!
//! It has no vote on paging, because every voting role measured lowered detection quality on
//! NAB (standard profile, `stormwatch eval nab`, series detector alone: realAWSCloudwatch 74.8,
//! realKnownCause 55.6):
//! - as a veto (a detection inside the calibrated band, |z| < 3, does not page): 58.8 and 21.2;
//!   real incidents often lie inside a band that a noisy day has widened;
//! - as a second detector (|z| ≥ 6 pages too): −65.8 and −237; even at |z| ≥ 10: 11.1 and
//!   −33.4. Forecast errors are heavy-tailed (level shifts, bursty CPU), so its tails are not
//!   calibrated enough to page on, where the series detector judges each statistic against the
//!   series' own extremes.

use augurs::ets::AutoETS;
use augurs::mstl::MSTLModel;
use augurs::{Fit, Predict};
use std::collections::VecDeque;

/// Days of history each fit sees.
pub const HISTORY_DAYS: usize = 3;
/// Days of history before the first fit: the decomposition needs two full periods.
pub const MIN_DAYS: usize = 2;
/// Part of a day between refits (and so the forecast horizon): one hour.
pub const REFIT_FRACTION: usize = 24;
/// Fewest rows between refits, so hourly series are not refitted every sample.
pub const MIN_HORIZON: usize = 6;
/// Longest day, in rows, that is forecast: one-minute samples.
pub const MAX_PERIOD_ROWS: usize = 1440;
/// Coverage of the prediction interval.
pub const LEVEL: f64 = 0.99;
/// Two-sided normal quantile of [`LEVEL`].
const LEVEL_Z: f64 = 2.575_829_303_548_901;
/// Out-of-sample errors kept to calibrate the band, in days.
const CALIBRATION_DAYS: usize = 1;
/// Out-of-sample errors needed before the calibration replaces the model's own band.
const MIN_CALIBRATION: usize = 24;
/// Bounds of the calibration factor.
const CALIBRATION_RANGE: (f64, f64) = (0.5, 20.0);
/// Median absolute value of a standard normal.
const NORMAL_MEDIAN_ABS: f64 = 0.674_489_750_196_081_7;
/// Smallest band half-width, relative to the forecast's magnitude: a perfectly regular series
/// would otherwise turn rounding noise into enormous deviations.
const REL_SIGMA_FLOOR: f64 = 1e-3;

/// A sample against its forecast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deviation {
    pub expected: f64,
    /// The prediction interval at [`LEVEL`].
    pub lower: f64,
    pub upper: f64,
    /// Signed distance from the forecast in the band's standard deviations.
    pub z: f64,
}

impl Deviation {
    /// −log10 of the two-sided normal tail of `z`, in the Gaussian approximation the other
    /// gauge scorers use (`z² / 2 ln 10`), so scores compare across scorers.
    pub fn surprise(&self) -> f64 {
        self.z * self.z / (2.0 * std::f64::consts::LN_10)
    }
}

/// The forecast made at the last fit, consumed one row at a time.
struct Ahead {
    point: Vec<f64>,
    lower: Vec<f64>,
    upper: Vec<f64>,
    next: usize,
}

/// Online forecaster for one series. Feed it every sample in order.
#[derive(Default)]
pub struct Forecaster {
    history: VecDeque<f64>,
    ahead: Option<Ahead>,
    /// Recent out-of-sample errors in the model's own band's standard deviations.
    errors: VecDeque<f64>,
    /// Factor that turns the model's band into a calibrated one, fixed at each refit.
    calibration: f64,
    fits: usize,
    failed_fits: usize,
}

impl Forecaster {
    pub fn new() -> Self {
        Self::default()
    }

    /// Judges `value` against the forecast for this row, then learns it. `period` is the
    /// series' day in rows once its sampling step is known (see
    /// [`crate::series::Detector::period_rows`]); without one there is no forecast.
    /// Non-finite values are skipped.
    pub fn observe(&mut self, value: f64, period: Option<usize>) -> Option<Deviation> {
        // The forecast for this row, consumed whether or not the row can be judged, so later
        // rows stay aligned with the steps they were forecast for.
        let ahead = self.ahead.as_mut().and_then(|a| {
            let i = a.next;
            a.next += 1;
            Some((*a.point.get(i)?, *a.lower.get(i)?, *a.upper.get(i)?))
        });
        if !value.is_finite() {
            // A missing sample still takes its step in the history, as the forecast (or the last
            // value), so the daily phase stays aligned; it is judged against nothing.
            let stand_in = ahead
                .map(|(p, _, _)| p)
                .filter(|p| p.is_finite())
                .or_else(|| self.history.back().copied());
            if let Some(v) = stand_in {
                self.learn(v, period);
            }
            return None;
        }
        let deviation = ahead
            // A failed fit's placeholder, or a model that lost its band: no judgement this row.
            .filter(|(p, lo, hi)| p.is_finite() && lo.is_finite() && hi.is_finite())
            .and_then(|(p, lo, hi)| {
                let sigma = ((hi - lo) / (2.0 * LEVEL_Z)).max(REL_SIGMA_FLOOR * p.abs().max(1e-9));
                let raw_z = (value - p) / sigma;
                raw_z.is_finite().then_some((p, lo, hi, raw_z))
            })
            .map(|(p, lo, hi, raw_z)| {
                self.errors.push_back(raw_z.abs());
                let c = self.calibration.max(CALIBRATION_RANGE.0);
                Deviation {
                    expected: p,
                    lower: p - c * (p - lo),
                    upper: p + c * (hi - p),
                    z: raw_z / c,
                }
            });
        self.learn(value, period);
        deviation
    }

    /// Adds a row to the history and refits when the forecast is used up.
    fn learn(&mut self, value: f64, period: Option<usize>) {
        // Without a usable day there is nothing to fit: nothing is kept, so a series with broken
        // timestamps cannot grow the history without bound. Days of more than a minute-resolution
        // series' rows (high-resolution metrics) would make each hourly fit take seconds on the
        // engine's thread; those go without a forecast.
        let Some(period) = period.filter(|&p| (2..=MAX_PERIOD_ROWS).contains(&p)) else {
            return;
        };
        self.history.push_back(value);
        while self.history.len() > HISTORY_DAYS * period {
            self.history.pop_front();
        }
        while self.errors.len() > CALIBRATION_DAYS * period {
            self.errors.pop_front();
        }
        let exhausted = self.ahead.as_ref().is_none_or(|a| a.next >= a.point.len());
        if exhausted && self.history.len() >= MIN_DAYS * period {
            self.refit(period);
        }
    }

    fn refit(&mut self, period: usize) {
        self.calibration = if self.errors.len() >= MIN_CALIBRATION {
            let mut e: Vec<f64> = self.errors.iter().copied().collect();
            let mid = e.len() / 2;
            let (_, median, _) = e.select_nth_unstable_by(mid, f64::total_cmp);
            (*median / NORMAL_MEDIAN_ABS).clamp(CALIBRATION_RANGE.0, CALIBRATION_RANGE.1)
        } else {
            1.0
        };
        let horizon = (period / REFIT_FRACTION).max(MIN_HORIZON);
        let y: Vec<f64> = self.history.iter().copied().collect();
        let model = MSTLModel::new(vec![period], AutoETS::non_seasonal().into_trend_model());
        let forecast = model
            .fit(&y)
            .map_err(|e| e.to_string())
            .and_then(|m| m.predict(horizon, LEVEL).map_err(|e| e.to_string()));
        self.ahead = match forecast {
            Ok(f) => f.intervals.map(|iv| Ahead {
                point: f.point,
                lower: iv.lower,
                upper: iv.upper,
                next: 0,
            }),
            Err(e) => {
                tracing::debug!(error = %e, rows = y.len(), "forecast fit failed; no forecast until the next refit");
                None
            }
        };
        // A failed fit still waits a horizon before retrying.
        if self.ahead.is_none() {
            self.failed_fits += 1;
            self.ahead = Some(Ahead {
                point: vec![f64::NAN; horizon],
                lower: vec![f64::NAN; horizon],
                upper: vec![f64::NAN; horizon],
                next: 0,
            });
        } else {
            self.fits += 1;
        }
    }

    /// Fits made and fits that failed, for diagnostics.
    pub fn fit_counts(&self) -> (usize, usize) {
        (self.fits, self.failed_fits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// A daily sine at 5-minute steps (288 rows a day) with noise.
    fn daily(row: usize, rng: &mut Rng) -> f64 {
        let phase = row as f64 / 288.0 * std::f64::consts::TAU;
        // Irwin–Hall: twelve uniforms make a standard normal, near enough.
        let noise = (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0;
        100.0 + 40.0 * phase.sin() + noise * 3.0
    }

    #[test]
    fn no_forecast_before_two_days_of_history() {
        let mut f = Forecaster::new();
        let mut rng = Rng::new(7);
        for row in 0..2 * 288 {
            assert!(f.observe(daily(row, &mut rng), Some(288)).is_none());
        }
        assert!(f.observe(daily(576, &mut rng), Some(288)).is_some());
    }

    #[test]
    fn the_daily_pattern_is_expected_and_a_break_from_it_is_not() {
        let mut f = Forecaster::new();
        let mut rng = Rng::new(11);
        let mut routine = Vec::new();
        for row in 0..4 * 288 {
            if let Some(d) = f.observe(daily(row, &mut rng), Some(288)) {
                routine.push(d);
            }
        }
        assert!(routine.len() > 500);
        // Calibrated: routine errors spread like a standard normal, and the 99 % band holds
        // nearly all routine rows while staying narrow next to the day's 80-point swing.
        let n = routine.len() as f64;
        let mean_z = routine.iter().map(|d| d.z).sum::<f64>() / n;
        let sd_z = (routine.iter().map(|d| (d.z - mean_z).powi(2)).sum::<f64>() / n).sqrt();
        assert!(
            mean_z.abs() < 0.2 && (0.8..1.25).contains(&sd_z),
            "z mean {mean_z:.2} sd {sd_z:.2}"
        );
        let inside = routine.iter().filter(|d| d.z.abs() < LEVEL_Z).count() as f64 / n;
        assert!(
            inside > 0.97,
            "only {inside:.3} of routine rows inside the band"
        );
        let half_width = routine
            .iter()
            .map(|d| (d.upper - d.lower) / 2.0)
            .sum::<f64>()
            / n;
        assert!(
            half_width < 15.0,
            "band too wide to be useful: ±{half_width:.1}"
        );
        // At the trough of the day, the peak's value is far outside the band.
        let trough = 4 * 288 + 216;
        for row in 4 * 288..trough {
            f.observe(daily(row, &mut rng), Some(288));
        }
        let d = f.observe(140.0, Some(288)).expect("a forecast");
        assert!(
            d.expected < 80.0,
            "expected the trough, got {:.1}",
            d.expected
        );
        assert!(d.z > 5.0 && d.surprise() > 5.0, "{d:?}");
    }

    #[test]
    fn unknown_period_or_garbage_gives_no_forecast_and_no_panic() {
        let mut f = Forecaster::new();
        for row in 0..2000 {
            assert!(f.observe(row as f64, None).is_none());
            assert!(f.observe(row as f64, Some(86_400)).is_none());
        }
        assert!(f.history.is_empty(), "nothing kept without a usable day");
        assert!(f.observe(f64::NAN, Some(288)).is_none());
        // A gap in a patterned series neither breaks the forecast nor shifts its phase.
        let mut h = Forecaster::new();
        let mut rng = Rng::new(3);
        for row in 0..3 * 288 {
            h.observe(daily(row, &mut rng), Some(288));
        }
        for _ in 0..5 {
            assert!(h.observe(f64::NAN, Some(288)).is_none());
        }
        let after: Vec<f64> = (3 * 288 + 5..3 * 288 + 60)
            .filter_map(|row| h.observe(daily(row, &mut rng), Some(288)))
            .map(|d| d.z.abs())
            .collect();
        assert!(
            after.len() > 50 && after.iter().all(|z| *z < 5.0),
            "{after:?}"
        );
        let mut g = Forecaster::new();
        for _ in 0..3 * 288 {
            g.observe(5.0, Some(288));
        }
        let d = g.observe(5.0, Some(288)).expect("a forecast");
        assert!(d.z.abs() < 1.0, "a constant series forecasts itself: {d:?}");
    }
}
