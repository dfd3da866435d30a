//! Seeded random numbers and math that gives the same bits on every platform, so a seed means the
//! same scenario, and the same isolation forest, on every machine and release.

/// SplitMix64: tiny, fast and stable across platforms and releases, so a seed means the same scenario forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi) (hi > lo).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % hi.saturating_sub(lo).max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// A uniformly chosen element; `xs` must be non-empty (every caller here guarantees it).
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.range(0, xs.len() as u64) as usize]
    }

    /// Poisson-distributed count with mean `lambda` (Knuth for small lambda, normal approx above 30).
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda.is_nan() || lambda <= 0.0 {
            return 0;
        }
        if lambda > 30.0 {
            // Irwin–Hall instead of Box–Muller: it needs no ln/cos, whose last bits vary by libm.
            let z: f64 = (0..12).map(|_| self.f64()).sum::<f64>() - 6.0;
            let v = (lambda + z * lambda.sqrt()).round();
            return if v < 0.0 { 0 } else { v as u64 };
        }
        let limit = det_exp(-lambda);
        let mut k = 0;
        let mut p = 1.0;
        loop {
            p *= self.f64();
            if p <= limit {
                return k;
            }
            k += 1;
        }
    }

    /// Uniform float in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform integer in [lo, hi] (inclusive), as i64 for time arithmetic.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo).max(0) as u64 + 1)) as i64
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.range(0, i as u64 + 1) as usize;
            xs.swap(i, j);
        }
    }
}

/// e^x from squaring a short Taylor series: libm's `exp` may differ in the last bit between platforms.
pub fn det_exp(x: f64) -> f64 {
    let mut r = x;
    let mut halvings = 0;
    while r.abs() > 0.5 && halvings < 64 {
        r /= 2.0;
        halvings += 1;
    }
    let mut sum = 1.0;
    let mut term = 1.0;
    for i in 1..=18 {
        term *= r / f64::from(i);
        sum += term;
    }
    for _ in 0..halvings {
        sum *= sum;
    }
    sum
}

/// sin(x) by Taylor series after reduction to [-π, π], for the same reason as [`det_exp`].
pub fn det_sin(x: f64) -> f64 {
    let tau = std::f64::consts::TAU;
    let r = x - (x / tau).round() * tau;
    let mut sum = 0.0;
    let mut term = r;
    for i in 0..14 {
        sum += term;
        let n = f64::from(2 * i + 2);
        term *= -r * r / (n * (n + 1.0));
    }
    sum
}
