//! Sharded runs. `check --shard I/N` measures the I-th of N contiguous blocks of whole
//! batches of the data set and writes a partial report: per-image values and provenance,
//! no aggregates and no verdicts. `merge` checks that the partials belong to one run (same
//! model, suite, configuration, seed, data, batch sizes, N; no shard missing or twice), joins
//! their findings in data-set order and hands them to the same finish -> evaluate -> decide
//! steps as a single run, so the merged report equals a single-machine run's.
//!
//! Why blocks of whole batches: every image then sees exactly the batches (and the internal
//! model-pass chunks) of a single run, so its numbers are bit-identical, not only equal up
//! to float rounding. Every random draw is keyed by seed, purpose and image index already.
use crate::check::{Measure, Measured, Preflight};
use crate::error::{Error, Result};
use crate::report::{ImageRecord, ModelInfo, Provenance};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `kind` of a partial report.
pub const KIND: &str = "xaudit-partial";
/// Format version of partial reports (a merge refuses another).
pub const VERSION: &str = "1";

/// `I/N` of `--shard`, 0-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not I/N (e.g. 0/4: the first of four shards)"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("shard index `{i}` is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count `{n}` is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: the index counts from 0 and must be below the count (0/{count} .. {}/{count})",
                count.max(1) - 1
            ));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The partial report's file name.
    pub fn file_name(&self) -> String {
        format!("partial-{}-of-{}.json", self.index, self.count)
    }
}

/// What makes shards one run: every partial of a run has the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunKey {
    pub xaudit_version: String,
    pub model_sha256: String,
    pub suite: String,
    pub suite_sha256: String,
    pub config_sha256: Option<String>,
    /// The model input and preprocessing, as the configuration resolved them.
    pub preprocess: serde_json::Value,
    pub seed: u64,
    /// sha256 of the data-set manifest (every image, in order, with its file hash).
    pub data_sha256: String,
    pub data_count: usize,
    pub methods: Vec<String>,
    pub batch_size: usize,
    pub internal_batch: usize,
    pub per_sample: bool,
    /// Other models of the run (surrogate, random-label model, replicas) by file hash.
    pub other_models: Vec<String>,
    pub out_of_set: Option<String>,
}

impl RunKey {
    /// The fields where `self` and `o` differ.
    pub fn differences(&self, o: &RunKey) -> Vec<String> {
        let a = serde_json::to_value(self).unwrap_or_default();
        let b = serde_json::to_value(o).unwrap_or_default();
        let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
            return Vec::new();
        };
        a.iter()
            .filter(|(k, v)| b.get(*k) != Some(*v))
            .map(|(k, v)| format!("{k} ({v} vs {})", b.get(k).cloned().unwrap_or_default()))
            .collect()
    }
}

/// How the shard was invoked: what `merge` needs to rebuild the run's plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invocation {
    /// `--suite` as given (a built-in name or a path).
    pub suite: String,
    /// The configuration file, if any (absolute).
    pub config: Option<PathBuf>,
    /// `--method` as given (empty: the configuration's, else the suite's).
    pub methods: Vec<String>,
    /// The baseline report, if any (absolute).
    pub baseline: Option<PathBuf>,
    pub exit_zero: bool,
}

/// One shard's partial report.
#[derive(Serialize, Deserialize)]
pub struct Partial {
    pub kind: String,
    pub version: String,
    pub shard: Shard,
    pub run: RunKey,
    pub invocation: Invocation,
    /// Every image of the data set (not only this shard's).
    pub images: Vec<ImageRecord>,
    /// Data-set indices this shard measured, as a half-open range.
    pub measured_images: std::ops::Range<usize>,
    pub preflight: Preflight,
    /// Unfinished findings per (audit, method) job, in plan order.
    pub measured: Vec<Measured>,
    pub model: ModelInfo,
    pub provenance: Provenance,
}

impl Partial {
    /// Writes the partial atomically (a temporary file renamed into place), so a killed
    /// shard never leaves a half-written partial for the merge to trip on.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string(self).map_err(|e| {
            Error::data(
                path,
                format!("cannot serialise: {e}"),
                "report this as a bug",
            )
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        let fail = |e: std::io::Error| {
            let _ = std::fs::remove_file(&tmp);
            Error::data(
                path,
                format!("cannot write: {e}"),
                "check that the folder exists and is writable",
            )
        };
        std::fs::write(&tmp, text).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }

    pub fn read(path: &Path) -> Result<Partial> {
        let fix = "pass the partial-I-of-N.json files written by `xaudit check --shard I/N`";
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::data(path, format!("cannot read: {e}"), fix))?;
        let head: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::data(path, format!("not JSON: {e}"), fix))?;
        if head.get("kind").and_then(|k| k.as_str()) != Some(KIND) {
            return Err(Error::data(path, "not a partial report", fix));
        }
        let version = head.get("version").and_then(|k| k.as_str()).unwrap_or("?");
        if version != VERSION {
            return Err(Error::data(
                path,
                format!("partial report version {version}; this xaudit reads version {VERSION}"),
                "run the shards and the merge with the same xaudit version",
            ));
        }
        serde_json::from_value(head)
            .map_err(|e| Error::data(path, format!("malformed partial report: {e}"), fix))
    }
}

/// The shards of one run, joined.
pub struct Merged {
    pub run: RunKey,
    pub invocation: Invocation,
    pub images: Vec<ImageRecord>,
    pub preflight: Preflight,
    pub measured: Vec<Measured>,
    pub model: ModelInfo,
    /// The first shard's provenance (device, threads, started: the earliest start).
    pub provenance: Provenance,
    pub shards: usize,
}

/// Checks that `parts` are every shard of one run, once, and joins them.
pub fn merge(mut parts: Vec<(PathBuf, Partial)>) -> Result<Merged> {
    let Some((first_path, first)) = parts.first() else {
        return Err(Error::data(
            "merge",
            "no partial report given",
            "pass the partial-*.json files of every shard",
        ));
    };
    let n = first.shard.count;
    let first_path = first_path.clone();
    for (p, part) in &parts {
        if part.shard.count != n {
            return Err(Error::data(
                p,
                format!(
                    "shard {} of {}, but {} is a shard of {n}",
                    part.shard.index,
                    part.shard.count,
                    first_path.display()
                ),
                "merge the partials of one run (the same --shard I/N count)",
            ));
        }
        let diff = first.run.differences(&part.run);
        if !diff.is_empty() {
            return Err(Error::data(
                p,
                format!(
                    "not the same run as {}: {}",
                    first_path.display(),
                    diff.join("; ")
                ),
                "merge the partials of one run: every shard with the same model, suite, configuration, seed, data, methods and batch sizes (--batch-size, --internal-batch-size)",
            ));
        }
    }
    parts.sort_by_key(|(_, p)| p.shard.index);
    for w in parts.windows(2) {
        if w[0].1.shard.index == w[1].1.shard.index {
            return Err(Error::data(
                &w[1].0,
                format!(
                    "shard {}/{n} is also in {}",
                    w[1].1.shard.index,
                    w[0].0.display()
                ),
                "pass each shard's partial once",
            ));
        }
    }
    let present: Vec<usize> = parts.iter().map(|(_, p)| p.shard.index).collect();
    let missing: Vec<String> = (0..n)
        .filter(|i| !present.contains(i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::data(
            "merge",
            format!("shard(s) {} missing", missing.join(", ")),
            "run the missing shards (xaudit check ... --shard I/N) and pass every partial",
        ));
    }
    let jobs = |p: &Partial| -> Vec<(usize, String)> {
        p.measured
            .iter()
            .map(|m| (m.gate, m.method.name().to_string()))
            .collect()
    };
    let first_jobs = jobs(&parts[0].1);
    if let Some((p, _)) = parts.iter().find(|(_, p)| jobs(p) != first_jobs) {
        return Err(Error::data(
            p,
            "measured other audits than the first shard",
            "run every shard with the same suite, configuration and --method",
        ));
    }
    let mut parts = parts.into_iter();
    let Some((_, head)) = parts.next() else {
        return Err(Error::data(
            "merge",
            "no partial report given",
            "pass the partial-*.json files of every shard",
        ));
    };
    let Partial {
        run,
        invocation,
        images,
        mut preflight,
        measured,
        model,
        mut provenance,
        ..
    } = head;
    let mut per_job: Vec<Vec<Measured>> = measured.into_iter().map(|m| vec![m]).collect();
    for (_, p) in parts {
        preflight.add(&p.preflight);
        if p.provenance.started < provenance.started {
            provenance.started = p.provenance.started.clone();
        }
        for (slot, m) in per_job.iter_mut().zip(p.measured) {
            slot.push(m);
        }
    }
    let measured = per_job
        .into_iter()
        .map(join_job)
        .collect::<Result<Vec<_>>>()?;
    Ok(Merged {
        run,
        invocation,
        images,
        preflight,
        measured,
        model,
        provenance,
        shards: n,
    })
}

/// One job over every shard: findings joined variant by variant; a job that errored or was
/// not run in any shard is that for the run (the first shard's reason).
pub(crate) fn join_job(parts: Vec<Measured>) -> Result<Measured> {
    let gate = parts[0].gate;
    let method = parts[0].method;
    let duration_s = parts.iter().map(|m| m.duration_s).sum();
    let passes = parts
        .iter()
        .fold((0, 0), |a, m| (a.0 + m.passes.0, a.1 + m.passes.1));
    let mut findings: Vec<Vec<crate::audit::Finding>> = Vec::new();
    let mut other: Option<Measure> = None;
    for m in parts {
        match m.measure {
            Measure::Findings(fs) => {
                if findings.is_empty() {
                    findings = fs.into_iter().map(|f| vec![f]).collect();
                } else if fs.len() != findings.len() {
                    other.get_or_insert(Measure::Error(
                        "the shards measured different numbers of variants".into(),
                    ));
                } else {
                    for (slot, f) in findings.iter_mut().zip(fs) {
                        slot.push(f);
                    }
                }
            }
            // An error outranks not-run: one shard failing fails the job.
            e @ Measure::Error(_) => {
                if !matches!(other, Some(Measure::Error(_))) {
                    other = Some(e);
                }
            }
            n @ Measure::NotRun(_) => {
                other.get_or_insert(n);
            }
        }
    }
    let measure = match other {
        Some(m) => m,
        None => Measure::Findings(
            findings
                .into_iter()
                .map(|fs| {
                    crate::audit::Finding::merge(fs).map_err(|e| {
                        Error::data("merge", e, "re-run the shards with the same xaudit version")
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    Ok(Measured {
        gate,
        method,
        measure,
        duration_s,
        passes,
        stopping: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs_parse_and_bad_ones_say_why() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert!("4/4"
            .parse::<Shard>()
            .unwrap_err()
            .contains("counts from 0"));
    }
}
