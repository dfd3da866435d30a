//! The label queue: which lines to ask the operator about first, so a few keystrokes teach the
//! most. One line stands for each template (the one the learner is least sure of), and templates
//! are ranked by
//!
//! - uncertainty: how close the learner's probability is to ½;
//! - reach: how many unlabelled lines share the template (a label on it decides them all);
//! - novelty: templates already labelled fall back, and each pick from a source lowers that
//!   source's next picks, so the queue spreads across templates and sources.

use std::collections::HashMap;

/// Smallest uncertainty a template keeps: a large template the learner is sure of still comes up
/// once the uncertain ones are answered, so a confident mistake gets a chance to be corrected.
const UNCERTAINTY_FLOOR: f64 = 0.02;
/// How much each earlier pick from a source lowers the next pick from it.
const SOURCE_SPREAD: f64 = 0.25;

/// An unlabelled line the queue may ask about.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub source: &'a str,
    /// Template key (see [`template_key`](super::learner::template_key)).
    pub template: &'a str,
    /// The learner's current probability of "anomaly".
    pub probability: f64,
}

/// Indices into `candidates`, most informative first, at most `n`, one per template.
/// `labels_on` says how many labels a template key already has.
pub fn rank(candidates: &[Candidate], labels_on: impl Fn(&str) -> u32, n: usize) -> Vec<usize> {
    struct Group {
        best: usize,
        best_uncertainty: f64,
        lines: usize,
    }
    let mut groups: HashMap<&str, Group> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        let u = uncertainty(c.probability);
        let g = groups.entry(c.template).or_insert(Group {
            best: i,
            best_uncertainty: u,
            lines: 0,
        });
        g.lines += 1;
        if u > g.best_uncertainty {
            g.best = i;
            g.best_uncertainty = u;
        }
    }
    let mut scored: Vec<(f64, usize)> = groups
        .iter()
        .map(|(template, g)| {
            let seen = f64::from(labels_on(template));
            let reach = (1.0 + g.lines as f64).ln();
            (
                g.best_uncertainty.max(UNCERTAINTY_FLOOR) * reach / (1.0 + seen).powi(2),
                g.best,
            )
        })
        .collect();
    // Ties break on the line's position so the queue is the same on every run.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut picked = Vec::with_capacity(n.min(scored.len()));
    let mut per_source: HashMap<&str, u32> = HashMap::new();
    while picked.len() < n && !scored.is_empty() {
        let (at, _) = scored
            .iter()
            .enumerate()
            .map(|(k, (v, i))| {
                let earlier = per_source.get(candidates[*i].source).copied().unwrap_or(0);
                (k, v / (1.0 + SOURCE_SPREAD * f64::from(earlier)))
            })
            .fold((0, f64::MIN), |best, c| if c.1 > best.1 { c } else { best });
        let (_, i) = scored.remove(at);
        *per_source.entry(candidates[i].source).or_default() += 1;
        picked.push(i);
    }
    picked
}

fn uncertainty(p: f64) -> f64 {
    1.0 - (2.0 * p.clamp(0.0, 1.0) - 1.0).abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c<'a>(source: &'a str, template: &'a str, p: f64) -> Candidate<'a> {
        Candidate {
            source,
            template,
            probability: p,
        }
    }

    #[test]
    fn uncertain_wide_templates_first_one_line_each() {
        let cands = [
            c("s", "sure", 0.01),
            c("s", "sure", 0.01),
            c("s", "unsure", 0.45),
            c("s", "unsure", 0.55),
            c("s", "unsure", 0.52),
            c("s", "lonely", 0.5),
        ];
        let order = rank(&cands, |_| 0, 10);
        assert_eq!(order, vec![4, 5, 0]);
    }

    #[test]
    fn labelled_templates_and_busy_sources_fall_back() {
        let cands = [
            c("a", "t1", 0.5),
            c("a", "t2", 0.5),
            c("b", "t3", 0.45),
            c("a", "t4", 0.5),
        ];
        let order = rank(&cands, |t| u32::from(t == "t1"), 4);
        // t2 first (a, untouched); then b's t3 beats a's t4 because a was just asked.
        assert_eq!(order, vec![1, 2, 3, 0]);
    }
}
