//! What the supervised model sees of a line: the unsupervised score, the level, how common its
//! template is, and the template's words hashed into a fixed number of buckets, so a label on one
//! template teaches about unlabelled templates that share its words ("FATAL", "interrupt").

use crate::parse::Level;

/// Hashed word buckets of the template text.
pub const WORD_BUCKETS: usize = 48;
/// Length of every feature vector.
pub const DIMS: usize = 4 + WORD_BUCKETS;

/// What the engine knew about a line when it scored it.
#[derive(Debug, Clone, Copy)]
pub struct LineFacts<'a> {
    /// The engine's unsupervised score, 0..1.
    pub score: f64,
    pub level: Level,
    /// The template's text, parameters as `<*>`.
    pub template: &'a str,
    /// Lines of this template seen so far, this one included.
    pub template_lines: u64,
}

pub fn line_features(f: &LineFacts) -> Vec<f32> {
    let mut x = vec![0.0f32; DIMS];
    x[0] = f.score.clamp(0.0, 1.0) as f32;
    x[1] = match f.level {
        Level::Debug => 0.0,
        Level::Info => 1.0,
        Level::Warn => 2.0,
        Level::Error => 3.0,
    };
    x[2] = (f.template_lines.max(1) as f32).ln();
    x[3] = f32::from(u8::from(f.template_lines <= 1));
    for word in words(f.template) {
        x[4 + bucket(&word)] = 1.0;
    }
    x
}

/// Lower-cased alphabetic words of a template, parameters and numbers left out: they vary between
/// lines of one template and would only spread its label thin.
fn words(template: &str) -> impl Iterator<Item = String> + '_ {
    template
        .split(|c: char| !c.is_ascii_alphabetic() && c != '*')
        .filter(|w| w.len() >= 2 && !w.contains('*'))
        .map(str::to_ascii_lowercase)
}

fn bucket(word: &str) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for b in word.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as usize % WORD_BUCKETS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_words_same_buckets_whatever_the_parameters() {
        let facts = |t| LineFacts {
            score: 0.2,
            level: Level::Error,
            template: t,
            template_lines: 3,
        };
        let a = line_features(&facts("RAS KERNEL FATAL data TLB error interrupt <*>"));
        let b = line_features(&facts("ras kernel fatal data tlb error interrupt 0x1f"));
        assert_eq!(a, b);
        assert_eq!(a.len(), DIMS);
        assert_eq!(a[1], 3.0);
        assert!(a[4..].iter().filter(|v| **v > 0.0).count() >= 5);
    }
}
