//! `stormwatch eval templates`: the template miner against loghub-2k's labelled templates.
//!
//! For each system folder `<S>` holding `<S>_2k.log_structured.csv`, a fresh miner reads the
//! `Content` column in file order. Grouping accuracy (GA, logpai's definition): a message counts
//! when its predicted group holds exactly the messages of its `EventId` group. Parsing accuracy
//! (PA): the message's final template equals the `EventTemplate` of the corrected ground truth
//! (`_structured_corrected.csv`) when that file is present. `--emit` writes the predictions in
//! logpai/logparser's layout so its own evaluator can score them independently; emitting needs only
//! the `Content` column.

use crate::template::{Miner, TemplateId};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TemplatesEvalError {
    #[error(
        "cannot read {path}: {source}. Point --loghub at a loghub-2k directory (one folder per system)."
    )]
    Read {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{path} has no Content column; is it a loghub _structured.csv?")]
    NoContent { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemResult {
    pub name: String,
    pub lines: usize,
    pub ga: Option<f64>,
    pub pa: Option<f64>,
    pub templates: usize,
    pub truth_templates: Option<usize>,
    pub drain_ga: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TemplatesEval {
    pub systems: Vec<SystemResult>,
    pub mean_ga: Option<f64>,
    pub mean_pa: Option<f64>,
    pub mean_drain_ga: Option<f64>,
    pub elapsed_s: f64,
}

/// One CSV file: the named columns, rows in file order.
struct Table {
    header: Vec<String>,
    rows: Vec<csv::StringRecord>,
}

impl Table {
    fn read(path: &Path) -> Result<Table, TemplatesEvalError> {
        let err = |e: csv::Error| TemplatesEvalError::Read {
            path: path.to_path_buf(),
            source: Box::new(e),
        };
        let mut r = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .map_err(err)?;
        let header = r
            .headers()
            .map_err(err)?
            .iter()
            .map(str::to_string)
            .collect();
        let rows = r.records().collect::<Result<Vec<_>, _>>().map_err(err)?;
        Ok(Table { header, rows })
    }

    fn column(&self, name: &str) -> Option<Vec<&str>> {
        let i = self.header.iter().position(|h| h == name)?;
        Some(self.rows.iter().map(|r| r.get(i).unwrap_or("")).collect())
    }
}

fn published_drain(dir: &Path) -> HashMap<String, f64> {
    let path = dir.join("published_results/loghub2k_GA_from_logparser_readmes.csv");
    let Ok(t) = Table::read(&path) else {
        return HashMap::new();
    };
    let (Some(parser), Some(dataset), Some(ga)) = (
        t.column("parser"),
        t.column("dataset"),
        t.column("grouping_accuracy_GA"),
    ) else {
        return HashMap::new();
    };
    parser
        .iter()
        .zip(dataset)
        .zip(ga)
        .filter(|((p, _), _)| **p == "Drain")
        .filter_map(|((_, d), g)| Some((d.to_string(), g.parse().ok()?)))
        .collect()
}

/// The systems of a loghub-2k directory: (name, path of `<S>/<S>_2k.log_structured.csv`), sorted,
/// for every folder that has one.
pub fn systems(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().to_string();
            let structured = p.join(format!("{name}_2k.log_structured.csv"));
            structured.exists().then_some((name, structured))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// logpai's grouping accuracy: the share of messages whose predicted group is exactly their true group.
pub fn grouping_accuracy(predicted: &[TemplateId], truth: &[&str]) -> f64 {
    if predicted.is_empty() {
        return 0.0;
    }
    let mut pred_groups: HashMap<TemplateId, Vec<usize>> = HashMap::new();
    for (i, p) in predicted.iter().enumerate() {
        pred_groups.entry(*p).or_default().push(i);
    }
    let mut truth_sizes: HashMap<&str, usize> = HashMap::new();
    for t in truth {
        *truth_sizes.entry(t).or_default() += 1;
    }
    let correct: usize = pred_groups
        .values()
        .filter(|members| {
            let t = truth[members[0]];
            members.iter().all(|&i| truth[i] == t) && truth_sizes.get(t) == Some(&members.len())
        })
        .map(Vec::len)
        .sum();
    correct as f64 / predicted.len() as f64
}

fn normalise(template: &str) -> String {
    template.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Evaluates every system folder under `dir`; `emit` receives logparser-layout predictions.
pub fn run(dir: &Path, emit: Option<&Path>) -> Result<TemplatesEval, TemplatesEvalError> {
    let started = std::time::Instant::now();
    let drain = published_drain(dir);
    let found = systems(dir).map_err(|e| TemplatesEvalError::Read {
        path: dir.to_path_buf(),
        source: Box::new(e),
    })?;
    if let Some(out) = emit {
        std::fs::create_dir_all(out).map_err(|e| TemplatesEvalError::Write {
            path: out.to_path_buf(),
            source: Box::new(e),
        })?;
    }
    let mut systems = Vec::new();
    for (name, structured) in found {
        let sys_dir = structured.parent().unwrap_or(dir).to_path_buf();
        let table = Table::read(&structured)?;
        let content = table
            .column("Content")
            .ok_or_else(|| TemplatesEvalError::NoContent {
                path: structured.clone(),
            })?;
        let mut miner = Miner::new();
        let assigned: Vec<TemplateId> = content.iter().map(|c| miner.mine(c)).collect();
        // Templates may merge as the stream goes on: each line follows its template.
        let predicted: Vec<TemplateId> = assigned.iter().map(|&id| miner.canonical(id)).collect();
        let mut distinct = predicted.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let truth = table.column("EventId");
        let ga = truth.as_ref().map(|t| grouping_accuracy(&predicted, t));
        let truth_templates = truth.as_ref().map(|t| {
            let mut d = t.clone();
            d.sort_unstable();
            d.dedup();
            d.len()
        });
        let corrected = sys_dir.join(format!("{name}_2k.log_structured_corrected.csv"));
        let pa = Table::read(&corrected)
            .ok()
            .and_then(|t| {
                t.column("EventTemplate")
                    .map(|c| c.iter().map(|s| normalise(s)).collect::<Vec<_>>())
            })
            .filter(|truth| truth.len() == predicted.len())
            .map(|truth| {
                let texts: HashMap<TemplateId, String> = distinct
                    .iter()
                    .map(|&id| (id, normalise(&miner.template(id))))
                    .collect();
                let ok = predicted
                    .iter()
                    .zip(&truth)
                    .filter(|(p, t)| texts.get(p).is_some_and(|x| x == *t))
                    .count();
                ok as f64 / predicted.len().max(1) as f64
            });
        if let Some(out) = emit {
            write_predictions(out, &name, &table, &content, &predicted, &miner)?;
        }
        systems.push(SystemResult {
            drain_ga: drain.get(&name).copied(),
            name,
            lines: content.len(),
            ga,
            pa,
            templates: distinct.len(),
            truth_templates,
        });
    }
    let mean = |f: &dyn Fn(&SystemResult) -> Option<f64>| {
        let v: Vec<f64> = systems.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    Ok(TemplatesEval {
        mean_ga: mean(&|s| s.ga),
        mean_pa: mean(&|s| s.pa),
        mean_drain_ga: mean(&|s| s.drain_ga),
        elapsed_s: started.elapsed().as_secs_f64(),
        systems,
    })
}

fn write_predictions(
    out: &Path,
    name: &str,
    table: &Table,
    content: &[&str],
    predicted: &[TemplateId],
    miner: &Miner,
) -> Result<(), TemplatesEvalError> {
    let path = out.join(format!("{name}_2k.log_structured.csv"));
    let err = |e: csv::Error| TemplatesEvalError::Write {
        path: path.clone(),
        source: Box::new(e),
    };
    let mut w = csv::Writer::from_path(&path).map_err(err)?;
    w.write_record(["LineId", "Content", "EventId", "EventTemplate"])
        .map_err(err)?;
    let line_ids = table.column("LineId");
    for (i, (c, id)) in content.iter().zip(predicted).enumerate() {
        let line_id = line_ids
            .as_ref()
            .and_then(|l| l.get(i).map(|s| s.to_string()))
            .unwrap_or_else(|| (i + 1).to_string());
        w.write_record([line_id.as_str(), c, &format!("T{id}"), &miner.template(*id)])
            .map_err(err)?;
    }
    w.flush().map_err(|e| TemplatesEvalError::Write {
        path: path.clone(),
        source: Box::new(e),
    })
}

impl TemplatesEval {
    pub fn render(&self) -> String {
        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.3}"));
        let mut s = format!(
            "{:<12} {:>6} {:>7} {:>7} {:>10} {:>8} {:>9}\n",
            "system", "lines", "GA", "PA", "templates", "truth", "Drain GA"
        );
        for r in &self.systems {
            s.push_str(&format!(
                "{:<12} {:>6} {:>7} {:>7} {:>10} {:>8} {:>9}\n",
                r.name,
                r.lines,
                f(r.ga),
                f(r.pa),
                r.templates,
                r.truth_templates.map_or("-".into(), |t| t.to_string()),
                f(r.drain_ga)
            ));
        }
        s.push_str(&format!(
            "mean GA {} (Drain {}), mean PA {}, {:.1} s\n",
            f(self.mean_ga),
            f(self.mean_drain_ga),
            f(self.mean_pa),
            self.elapsed_s
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ga_counts_only_exact_groups() {
        // Truth: {0,1} A, {2} B, {3} C. Predicted: {0,1} ok, {2,3} merged (both wrong).
        assert_eq!(grouping_accuracy(&[1, 1, 2, 2], &["A", "A", "B", "C"]), 0.5);
        assert_eq!(grouping_accuracy(&[1, 2, 3, 4], &["A", "A", "B", "C"]), 0.5);
        assert_eq!(grouping_accuracy(&[1, 1, 2, 3], &["A", "A", "B", "C"]), 1.0);
    }
}
