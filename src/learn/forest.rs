//! A seeded random forest classifier (CART trees on Gini impurity, bootstrap samples, a random
//! subset of features per split). Labels are few (tens to hundreds) and features short, so training
//! from scratch after every label costs milliseconds; the trees serialise so each trained version
//! can be kept in the store.

use crate::rng::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy)]
pub struct ForestOptions {
    pub trees: usize,
    pub max_depth: usize,
    /// Fewest samples a node needs before it may split.
    pub min_split: usize,
    pub seed: u64,
}

impl Default for ForestOptions {
    fn default() -> Self {
        ForestOptions {
            trees: 60,
            max_depth: 8,
            min_split: 2,
            seed: 7,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
enum Node {
    Split {
        feature: u16,
        at: f32,
        left: u32,
        right: u32,
    },
    Leaf {
        p: f32,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, x: &[f32]) -> f32 {
        let mut at = 0usize;
        loop {
            match self.nodes.get(at) {
                Some(Node::Split {
                    feature,
                    at: t,
                    left,
                    right,
                }) => {
                    let v = x.get(*feature as usize).copied().unwrap_or(0.0);
                    at = if v <= *t { *left } else { *right } as usize;
                }
                Some(Node::Leaf { p }) => return *p,
                None => return 0.5,
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Forest {
    dims: usize,
    trees: Vec<Tree>,
}

impl Forest {
    /// Trains on rows `xs` (all `dims` long) with labels `ys`. `None` when one class is missing:
    /// a forest that has only seen "normal" says nothing about anomalies.
    pub fn train(xs: &[Vec<f32>], ys: &[bool], opts: ForestOptions) -> Option<Forest> {
        let n = xs.len().min(ys.len());
        let dims = xs.first()?.len();
        if n == 0 || ys[..n].iter().all(|y| *y) || ys[..n].iter().all(|y| !*y) {
            return None;
        }
        let mut rng = Rng::new(opts.seed);
        let per_split = ((dims as f64).sqrt().ceil() as usize).clamp(1, dims);
        let trees = (0..opts.trees)
            .map(|_| {
                let sample: Vec<usize> = (0..n).map(|_| rng.range(0, n as u64) as usize).collect();
                let mut b = Builder {
                    xs,
                    ys,
                    dims,
                    per_split,
                    opts,
                    rng: &mut rng,
                    nodes: Vec::new(),
                };
                b.grow(sample, 0);
                Tree { nodes: b.nodes }
            })
            .collect();
        Some(Forest { dims, trees })
    }

    /// Probability of "anomaly": the mean of the trees' leaf frequencies.
    pub fn predict(&self, x: &[f32]) -> f64 {
        if self.trees.is_empty() {
            return 0.5;
        }
        let sum: f64 = self.trees.iter().map(|t| t.predict(x) as f64).sum();
        sum / self.trees.len() as f64
    }

    pub fn dims(&self) -> usize {
        self.dims
    }
}

struct Builder<'a> {
    xs: &'a [Vec<f32>],
    ys: &'a [bool],
    dims: usize,
    per_split: usize,
    opts: ForestOptions,
    rng: &'a mut Rng,
    nodes: Vec<Node>,
}

impl Builder<'_> {
    /// Appends the subtree for `rows` and returns its index.
    fn grow(&mut self, rows: Vec<usize>, depth: usize) -> u32 {
        let at = self.nodes.len() as u32;
        let pos = rows.iter().filter(|&&r| self.ys[r]).count();
        let p = pos as f32 / rows.len().max(1) as f32;
        self.nodes.push(Node::Leaf { p });
        if depth >= self.opts.max_depth
            || rows.len() < self.opts.min_split
            || pos == 0
            || pos == rows.len()
        {
            return at;
        }
        let Some((feature, threshold)) = self.best_split(&rows) else {
            return at;
        };
        let (l, r): (Vec<usize>, Vec<usize>) = rows
            .into_iter()
            .partition(|&i| self.value(i, feature) <= threshold);
        let left = self.grow(l, depth + 1);
        let right = self.grow(r, depth + 1);
        self.nodes[at as usize] = Node::Split {
            feature: feature as u16,
            at: threshold,
            left,
            right,
        };
        at
    }

    fn value(&self, row: usize, feature: usize) -> f32 {
        self.xs[row].get(feature).copied().unwrap_or(0.0)
    }

    /// The split with the lowest weighted Gini impurity among a random subset of features; a
    /// subset where no feature varies tries the rest, so constant features never end a branch early.
    fn best_split(&mut self, rows: &[usize]) -> Option<(usize, f32)> {
        let mut order: Vec<usize> = (0..self.dims).collect();
        for i in (1..order.len()).rev() {
            let j = self.rng.range(0, i as u64 + 1) as usize;
            order.swap(i, j);
        }
        let total_pos = rows.iter().filter(|&&r| self.ys[r]).count() as f64;
        let n = rows.len() as f64;
        let mut best: Option<(f64, usize, f32)> = None;
        let mut vals: Vec<(f32, bool)> = Vec::with_capacity(rows.len());
        for (tried, &f) in order.iter().enumerate() {
            if tried >= self.per_split && best.is_some() {
                break;
            }
            vals.clear();
            vals.extend(rows.iter().map(|&r| (self.value(r, f), self.ys[r])));
            vals.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut left_pos = 0.0;
            for k in 1..vals.len() {
                left_pos += f64::from(u8::from(vals[k - 1].1));
                if vals[k].0 <= vals[k - 1].0 {
                    continue;
                }
                let nl = k as f64;
                let nr = n - nl;
                let right_pos = total_pos - left_pos;
                let gini = |pos: f64, m: f64| {
                    let q = pos / m;
                    2.0 * q * (1.0 - q) * m
                };
                let impurity = gini(left_pos, nl) + gini(right_pos, nr);
                if best.is_none_or(|(b, _, _)| impurity < b) {
                    best = Some((impurity, f, (vals[k - 1].0 + vals[k].0) / 2.0));
                }
            }
        }
        best.map(|(_, f, t)| (f, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_class_trains_nothing() {
        let xs = vec![vec![0.0, 1.0], vec![1.0, 0.0]];
        assert!(Forest::train(&xs, &[true, true], ForestOptions::default()).is_none());
        assert!(Forest::train(&[], &[], ForestOptions::default()).is_none());
    }

    #[test]
    fn learns_a_feature_that_decides_among_noise() {
        let mut rng = Rng::new(3);
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for _ in 0..80 {
            let y = rng.chance(0.3);
            let mut x: Vec<f32> = (0..10).map(|_| rng.f64() as f32).collect();
            x[4] = if y { 1.0 } else { 0.0 };
            xs.push(x);
            ys.push(y);
        }
        let f = Forest::train(&xs, &ys, ForestOptions::default()).unwrap();
        let mut probe = vec![0.5f32; 10];
        probe[4] = 1.0;
        assert!(f.predict(&probe) > 0.8, "{}", f.predict(&probe));
        probe[4] = 0.0;
        assert!(f.predict(&probe) < 0.2, "{}", f.predict(&probe));
    }

    #[test]
    fn same_seed_same_forest_and_it_round_trips() {
        let xs = vec![vec![0.0], vec![1.0], vec![0.2], vec![0.9]];
        let ys = [false, true, false, true];
        let a = Forest::train(&xs, &ys, ForestOptions::default()).unwrap();
        let b = Forest::train(&xs, &ys, ForestOptions::default()).unwrap();
        assert_eq!(a, b);
        let json = serde_json::to_string(&a).unwrap();
        let back: Forest = serde_json::from_str(&json).unwrap();
        assert_eq!(back.predict(&[0.95]), a.predict(&[0.95]));
    }
}
