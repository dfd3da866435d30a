//! Extended isolation forest (Hariri, Carrasco Kind and Brunner, 2018): each tree splits a random
//! sample of the training points by random hyperplanes until every point is alone; points that
//! are isolated after few cuts are unlike the rest. "Extended" means the cuts are hyperplanes of
//! random slope through a random point of the data's bounding box, not axis-parallel cuts, which
//! removes the axis-aligned artefacts of the original method.
//!
//! Written here rather than taken from `extended-isolation-forest`, which this project used first,
//! for two reasons: that crate draws unseeded random numbers, so two runs over the same input
//! disagreed in the last decimals of every score; and it allocates every node and every split
//! separately, which made retraining cost more than all other detection work per source (about a
//! third of the detection stage in `bench templates`). Here a forest is one flat array of nodes,
//! a training run reuses two index buffers, and the random numbers come from a seeded
//! [`Rng`], so the same input gives the same forest on every run.

use crate::rng::Rng;

/// How a forest is grown.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub trees: usize,
    /// Points drawn (without replacement) for each tree; the depth limit is log2 of it.
    pub sample: usize,
    /// Coordinates of each cut's normal that are not zero, minus one: 0 gives the original
    /// axis-parallel cuts, `N − 1` fully random slopes.
    pub extension_level: usize,
}

const LEAF: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node<const N: usize> {
    /// Cut: a point x goes left when normal · x ≤ offset.
    normal: [f64; N],
    offset: f64,
    /// Children, or [`LEAF`].
    left: u32,
    right: u32,
    /// Training points that reached this leaf.
    size: u32,
}

/// A trained forest over `N`-dimensional points.
#[derive(Debug, Clone)]
pub struct IsolationForest<const N: usize> {
    nodes: Vec<Node<N>>,
    roots: Vec<u32>,
    /// Mean path length of an unsuccessful search in a tree of `sample` points: the yardstick that
    /// turns path lengths into scores.
    yardstick: f64,
}

impl<const N: usize> IsolationForest<N> {
    /// Grows a forest on `data`; `None` when there are fewer than two points or no trees.
    pub fn train(data: &[[f64; N]], opts: &Options, rng: &mut Rng) -> Option<Self> {
        let sample = opts.sample.min(data.len());
        if sample < 2 || opts.trees == 0 || N == 0 {
            return None;
        }
        let max_depth = sample.next_power_of_two().trailing_zeros() as usize;
        let mut forest = IsolationForest {
            nodes: Vec::with_capacity(opts.trees * (2 * sample - 1)),
            roots: Vec::with_capacity(opts.trees),
            yardstick: average_path(sample),
        };
        let mut pool: Vec<u32> = (0..data.len() as u32).collect();
        let mut grower = Grower {
            data,
            rng,
            max_depth,
            nonzero: (opts.extension_level + 1).min(N),
            axes: std::array::from_fn(|d| d),
        };
        for _ in 0..opts.trees {
            // Partial Fisher–Yates: the first `sample` entries become a uniform sample.
            for i in 0..sample {
                let j = i + grower.rng.range(0, (pool.len() - i) as u64) as usize;
                pool.swap(i, j);
            }
            let root = grower.grow(&mut forest.nodes, &mut pool[..sample], 0);
            forest.roots.push(root);
        }
        Some(forest)
    }

    /// Isolation score in (0, 1): about 0.5 for an ordinary point, towards 1 for one isolated
    /// after few cuts.
    pub fn score(&self, x: &[f64; N]) -> f64 {
        let total: f64 = self.roots.iter().map(|&r| self.path_length(r, x)).sum();
        let mean = total / self.roots.len().max(1) as f64;
        2f64.powf(-mean / self.yardstick)
    }

    fn path_length(&self, root: u32, x: &[f64; N]) -> f64 {
        let mut depth = 0.0;
        let mut at = root as usize;
        while let Some(node) = self.nodes.get(at) {
            if node.left == LEAF {
                // The leaf's points were not separated further: add the depth a tree over them
                // would have taken on average.
                return depth + average_path(node.size as usize);
            }
            depth += 1.0;
            at = if dot(&node.normal, x) <= node.offset {
                node.left
            } else {
                node.right
            } as usize;
        }
        depth
    }
}

struct Grower<'a, const N: usize> {
    data: &'a [[f64; N]],
    rng: &'a mut Rng,
    max_depth: usize,
    nonzero: usize,
    axes: [usize; N],
}

impl<const N: usize> Grower<'_, N> {
    /// Grows the subtree over `points` (indices into the data, reordered in place) and returns
    /// its root's index.
    fn grow(&mut self, nodes: &mut Vec<Node<N>>, points: &mut [u32], depth: usize) -> u32 {
        let at = nodes.len() as u32;
        nodes.push(Node {
            normal: [0.0; N],
            offset: 0.0,
            left: LEAF,
            right: LEAF,
            size: points.len() as u32,
        });
        if depth >= self.max_depth || points.len() <= 1 {
            return at;
        }
        let (normal, offset) = self.cut(points);
        // Partition: points on the left side of the cut first.
        let mut split = 0;
        for i in 0..points.len() {
            let x = &self.data[points[i] as usize];
            if dot(&normal, x) <= offset {
                points.swap(i, split);
                split += 1;
            }
        }
        let (left_points, right_points) = points.split_at_mut(split);
        let left = self.grow(nodes, left_points, depth + 1);
        let right = self.grow(nodes, right_points, depth + 1);
        if let Some(node) = nodes.get_mut(at as usize) {
            node.normal = normal;
            node.offset = offset;
            node.left = left;
            node.right = right;
        }
        at
    }

    /// A random hyperplane through a uniform point of the points' bounding box, with a normal
    /// whose `nonzero` randomly chosen coordinates are standard normal draws (only those
    /// coordinates' extents are needed).
    fn cut(&mut self, points: &[u32]) -> ([f64; N], f64) {
        for i in 0..self.nonzero {
            let j = i + self.rng.range(0, (N - i) as u64) as usize;
            self.axes.swap(i, j);
        }
        let mut normal = [0.0; N];
        let mut offset = 0.0;
        let mut spare = None;
        for &d in &self.axes[..self.nonzero] {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for &p in points {
                let v = self.data[p as usize][d];
                lo = lo.min(v);
                hi = hi.max(v);
            }
            normal[d] = match spare.take() {
                Some(z) => z,
                None => {
                    let (z, other) = standard_normal_pair(self.rng);
                    spare = Some(other);
                    z
                }
            };
            offset += normal[d] * (lo + (hi - lo) * self.rng.f64());
        }
        (normal, offset)
    }
}

fn dot<const N: usize>(a: &[f64; N], b: &[f64; N]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Two independent standard normal draws (Box–Muller).
fn standard_normal_pair(rng: &mut Rng) -> (f64, f64) {
    let radius = (-2.0 * (1.0 - rng.f64()).ln()).sqrt();
    let (sin, cos) = (std::f64::consts::TAU * rng.f64()).sin_cos();
    (radius * cos, radius * sin)
}

/// Mean path length of an unsuccessful binary-search-tree search among `n` points (the c(n) of
/// the isolation forest papers).
fn average_path(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: Options = Options {
        trees: 64,
        sample: 64,
        extension_level: 1,
    };

    fn cloud(n: usize, seed: u64) -> Vec<[f64; 3]> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| {
                let (a, b) = standard_normal_pair(&mut rng);
                [a, b, standard_normal_pair(&mut rng).0]
            })
            .collect()
    }

    #[test]
    fn an_outlier_scores_above_every_training_point() {
        let data = cloud(300, 1);
        let forest = IsolationForest::train(&data, &OPTS, &mut Rng::new(9)).expect("trained");
        let outlier = forest.score(&[6.0, -5.0, 4.0]);
        let centre = forest.score(&[0.0, 0.0, 0.0]);
        let most = data.iter().map(|x| forest.score(x)).fold(0.0, f64::max);
        assert!(outlier > most, "outlier {outlier} vs training max {most}");
        assert!(centre < 0.5, "centre {centre}");
        assert!(outlier > 0.65 && outlier < 1.0, "outlier {outlier}");
    }

    #[test]
    fn the_same_seed_grows_the_same_forest() {
        let data = cloud(200, 2);
        let a = IsolationForest::train(&data, &OPTS, &mut Rng::new(5)).expect("trained");
        let b = IsolationForest::train(&data, &OPTS, &mut Rng::new(5)).expect("trained");
        let c = IsolationForest::train(&data, &OPTS, &mut Rng::new(6)).expect("trained");
        let probe = [1.5, -0.5, 2.0];
        assert_eq!(a.score(&probe).to_bits(), b.score(&probe).to_bits());
        assert_ne!(a.score(&probe).to_bits(), c.score(&probe).to_bits());
    }

    #[test]
    fn tiny_or_constant_data_does_not_break_it() {
        assert!(IsolationForest::train(&[[1.0, 2.0]], &OPTS, &mut Rng::new(1)).is_none());
        let same = vec![[3.0, 3.0]; 50];
        let forest = IsolationForest::train(&same, &OPTS, &mut Rng::new(1)).expect("trained");
        let s = forest.score(&[3.0, 3.0]);
        assert!(s.is_finite() && s > 0.0 && s < 1.0, "{s}");
        assert!(forest.score(&[90.0, -4.0]).is_finite());
    }

    #[test]
    fn each_tree_has_at_most_the_nodes_its_sample_allows() {
        let data = cloud(500, 3);
        let forest = IsolationForest::train(&data, &OPTS, &mut Rng::new(4)).expect("trained");
        assert_eq!(forest.roots.len(), OPTS.trees);
        assert!(forest.nodes.len() <= OPTS.trees * (2 * OPTS.sample - 1));
        let leaves: u32 = forest
            .nodes
            .iter()
            .filter(|n| n.left == LEAF)
            .map(|n| n.size)
            .sum();
        assert_eq!(leaves as usize, OPTS.trees * OPTS.sample);
    }
}
