//! XA206 strategy-clusters: SpRAy (Lapuschkin et al. 2019): do the explanations of one class
//! split into distinct strategies, a sign of a Clever Hans shortcut?
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::{aggregate, Method};
use crate::error::Result;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA206",
    name: "strategy-clusters",
    title: "Strategy clusters: spectral relevance analysis, SpRAy (Lapuschkin et al. 2019)",
    what: "Whether the explanations of one predicted class fall into distinct groups: for each class, the downsampled maps are clustered spectrally and the eigengap says how many prediction strategies the data set shows. A class whose maps split into separate strategies is flagged, with example grids per strategy in the HTML report.",
    why: "A model can reach high accuracy with a shortcut: Lapuschkin et al. found a classifier that recognised horses by a copyright tag present on part of the training images, visible only as a separate cluster of explanations. One map at a time never shows it; the distribution of maps over a data set does. This audit is advisory: several strategies can be legitimate (a digit written two ways), so it points a reviewer at the groups rather than failing a release.",
    how: "Per image, the method's map of the predicted class is reduced to one value per pixel by the method's channel reduction, made absolute, downsampled by area averaging to `side` x `side` (default 16) and normalised to sum 1. For every predicted class with at least `min-images` (default 10) images: a symmetric k-nearest-neighbour graph (k = `neighbours`, default 10, Euclidean distance) and its normalised Laplacian L = I - D^-1/2 A D^-1/2 (SpRAy's affinity and spectral embedding); its eigenvalues in increasing order l_1 <= l_2 <= ...; the number of strategies k* = the k in 1..`max-clusters` (default 6) with the largest eigengap l_(k+1) - l_k (SpRAy's eigengap heuristic). When k* >= 2 the class is flagged and its images are clustered by k-means (k-means++ starts, 10 restarts, seeded) on the row-normalised first k* eigenvectors (Ng, Jordan and Weiss). Per image: minority = 1 when its class is flagged and it is not in the class's largest cluster. The summary lists every analysed class with its eigenvalues, k*, eigengap and cluster sizes; the HTML report shows up to 6 examples per strategy of each flagged class.",
    pass: "Advisory in the built-in suites: the share of analysed images in minority strategies is tested against 0.05 (exact binomial test with a Clopper-Pearson bound, in the run's error budget) and reported, never gating. Review the flagged classes' example grids: a strategy that looks at something other than the object (a watermark, a border, a background) is the Clever Hans signal.",
    references: &[
        "Lapuschkin, Wäldchen, Binder, Montavon, Samek, Müller. Unmasking Clever Hans predictors and assessing what machines really learn. Nature Communications 10, 1096 (2019), arXiv:1902.10178",
        "Ng, Jordan, Weiss. On Spectral Clustering: Analysis and an algorithm. NeurIPS 2001",
        "von Luxburg. A tutorial on spectral clustering. Statistics and Computing 2007 (eigengap heuristic)",
    ],
    default_metric: "minority",
    default_direction: Direction::Lower,
    metrics: &["minority", "cluster", "class-strategies"],
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Side of the downsampled maps.
    pub side: usize,
    pub min_images: usize,
    pub neighbours: usize,
    pub max_clusters: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            side: 16,
            min_images: 10,
            neighbours: 10,
            max_clusters: 6,
        }
    }
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.side == 0 || self.neighbours == 0 || self.max_clusters < 2 || self.min_images < 4 {
            return Err(
                "side and neighbours must be >= 1, max-clusters >= 2 and min-images >= 4".into(),
            );
        }
        Ok(())
    }
}

/// One analysed class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassStrategies {
    pub images: usize,
    pub eigenvalues: Vec<f64>,
    pub strategies: usize,
    pub eigengap: f64,
    pub cluster_sizes: Vec<usize>,
}

/// Spectral analysis of the rows of `x` `[n, d]`: (eigenvalues of the normalised Laplacian of
/// the symmetric kNN graph, in increasing order, and the eigenvectors as columns).
pub fn spectrum(x: &Tensor, neighbours: usize) -> (Tensor, Tensor) {
    let n = x.size()[0];
    let x = x.to_kind(Kind::Double);
    let d = Tensor::cdist(&x, &x, 2.0, None::<i64>);
    let k = (neighbours as i64).min(n - 1);
    // k+1 smallest include the point itself (distance 0); ties by index.
    let (_, nn) = d.topk(k + 1, 1, false, true);
    let a = Tensor::zeros([n, n], (Kind::Double, x.device())).scatter_value(1, &nn, 1.0);
    let eye = Tensor::eye(n, (Kind::Double, x.device()));
    let a = ((&a + a.transpose(0, 1)).clamp_max(1.0)) * (-&eye + 1.0);
    let deg = a.sum_dim_intlist(1, false, Kind::Double).clamp_min(1e-12);
    let s = deg.rsqrt();
    let l = &eye - &s.unsqueeze(1) * &a * s.unsqueeze(0);
    let (vals, vecs) = l.linalg_eigh("L");
    (vals, vecs)
}

/// The k in 1..=max with the largest gap l_(k+1) - l_k, and that gap.
pub fn eigengap(vals: &[f64], max: usize) -> (usize, f64) {
    let mut best = (1, f64::NEG_INFINITY);
    for k in 1..=max.min(vals.len().saturating_sub(1)) {
        let g = vals[k] - vals[k - 1];
        if g > best.1 {
            best = (k, g);
        }
    }
    best
}

/// Seeded k-means (k-means++ starts, `restarts` runs, lowest inertia) of the rows of `x`.
pub fn kmeans(x: &[Vec<f64>], k: usize, seed: u64, key: u64, restarts: usize) -> Vec<usize> {
    let n = x.len();
    let dist = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| (p - q).powi(2)).sum::<f64>();
    let mut best: (f64, Vec<usize>) = (f64::INFINITY, vec![0; n]);
    for r in 0..restarts {
        let mut rng = crate::rng::stream(seed, "strategy-clusters k-means", key, r as u64);
        let mut centres: Vec<Vec<f64>> = vec![x[rng.random_range(0..n)].clone()];
        while centres.len() < k {
            let d: Vec<f64> = x
                .iter()
                .map(|p| {
                    centres
                        .iter()
                        .map(|c| dist(p, c))
                        .fold(f64::INFINITY, f64::min)
                })
                .collect();
            let total: f64 = d.iter().sum();
            if total <= 0.0 {
                break;
            }
            let mut u = rng.random::<f64>() * total;
            let mut pick = n - 1;
            for (i, v) in d.iter().enumerate() {
                if u < *v {
                    pick = i;
                    break;
                }
                u -= v;
            }
            centres.push(x[pick].clone());
        }
        let mut assign = vec![0usize; n];
        for _ in 0..100 {
            let next: Vec<usize> = x
                .iter()
                .map(|p| {
                    (0..centres.len())
                        .min_by(|a, b| dist(p, &centres[*a]).total_cmp(&dist(p, &centres[*b])))
                        .unwrap_or(0)
                })
                .collect();
            let moved = next != assign;
            assign = next;
            for (c, centre) in centres.iter_mut().enumerate() {
                let members: Vec<&Vec<f64>> = x
                    .iter()
                    .zip(&assign)
                    .filter(|(_, a)| **a == c)
                    .map(|(p, _)| p)
                    .collect();
                if !members.is_empty() {
                    for (j, v) in centre.iter_mut().enumerate() {
                        *v = members.iter().map(|p| p[j]).sum::<f64>() / members.len() as f64;
                    }
                }
            }
            if !moved {
                break;
            }
        }
        let inertia: f64 = x
            .iter()
            .zip(&assign)
            .map(|(p, a)| dist(p, &centres[*a]))
            .sum();
        if inertia < best.0 {
            best = (inertia, assign);
        }
    }
    best.1
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let side = p.side as i64;
    let mut per_class: BTreeMap<i64, Vec<(usize, Vec<f32>)>> = BTreeMap::new();
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let maps = aggregate(&run.clean_maps(m, b)?, m.aggregate).abs();
        let small = maps
            .unsqueeze(1)
            .to_kind(Kind::Float)
            .adaptive_avg_pool2d([side, side])
            .flatten(1, -1);
        let small = &small / small.sum_dim_intlist(1, true, Kind::Float).clamp_min(1e-30);
        let rows = super::run::to_vecs(&small)?;
        for ((i, c), v) in b.indices.clone().zip(&clean).zip(rows) {
            per_class.entry(c.pred).or_default().push((i, v));
        }
        (run.progress)(b.len());
        Ok(())
    })?;
    let mut f = Finding::new("");
    let mut summary: BTreeMap<String, ClassStrategies> = BTreeMap::new();
    let (mut minority_total, mut tested) = (0u64, 0u64);
    let mut galleries = Vec::new();
    for (class, items) in &per_class {
        if items.len() < p.min_images {
            for (i, _) in items {
                f.push(
                    *i,
                    &[],
                    Some(format!(
                        "its predicted class has fewer than min-images ({}) images",
                        p.min_images
                    )),
                );
            }
            continue;
        }
        let n = items.len() as i64;
        let flat: Vec<f32> = items.iter().flat_map(|(_, v)| v.iter().copied()).collect();
        let x = Tensor::from_slice(&flat).view([n, side * side]);
        let (vals, vecs) = spectrum(&x, p.neighbours);
        let vals: Vec<f64> = Vec::try_from(vals)?;
        let (k, gap) = eigengap(&vals, p.max_clusters);
        let assign = if k >= 2 {
            let emb = vecs.narrow(1, 0, k as i64);
            let norm = emb
                .square()
                .sum_dim_intlist(1, true, Kind::Double)
                .sqrt()
                .clamp_min(1e-12);
            let emb = &emb / norm;
            let rows: Vec<Vec<f64>> = (0..n)
                .map(|r| Vec::try_from(emb.get(r)).unwrap_or_default())
                .collect();
            kmeans(&rows, k, run.seed, *class as u64, 10)
        } else {
            vec![0; items.len()]
        };
        let mut sizes = vec![0usize; k.max(1)];
        for a in &assign {
            sizes[*a] += 1;
        }
        let largest = (0..sizes.len())
            .max_by_key(|c| (sizes[*c], usize::MAX - c))
            .unwrap_or(0);
        for ((i, _), a) in items.iter().zip(&assign) {
            let minority = k >= 2 && *a != largest;
            minority_total += u64::from(minority);
            tested += 1;
            f.push(
                *i,
                &[
                    ("minority", f64::from(u8::from(minority))),
                    ("cluster", *a as f64),
                    ("class-strategies", k as f64),
                ],
                None,
            );
        }
        if k >= 2 {
            for (c, size) in sizes.iter().enumerate() {
                let members: Vec<usize> = items
                    .iter()
                    .zip(&assign)
                    .filter(|(_, a)| **a == c)
                    .map(|((i, _), _)| *i)
                    .take(6)
                    .collect();
                galleries.push((
                    format!("class {class} · strategy {} of {k} ({size} images)", c + 1),
                    members,
                ));
            }
        }
        summary.insert(
            class.to_string(),
            ClassStrategies {
                images: items.len(),
                eigenvalues: vals.iter().take(p.max_clusters + 1).copied().collect(),
                strategies: k,
                eigengap: gap,
                cluster_sizes: sizes,
            },
        );
    }
    // Pictures for the galleries only (a few per strategy), read back from the data set and
    // the clean-map cache.
    for (title, members) in galleries {
        let mut shown = Vec::new();
        for i in members {
            let b = run.data.load_batch(i..i + 1, run.pre, run.device())?;
            let map = aggregate(&run.clean_maps(m, &b)?, m.aggregate).abs();
            shown.push((
                i,
                vec![
                    run.image_panel(&b.x.get(0), "image")?,
                    super::run::map_panel(&map.get(0), "explanation")?,
                ],
            ));
        }
        f.galleries.push((title, shown));
    }
    f.counts = Some((minority_total, tested));
    f.summary("classes", &summary);
    f.summary(
        "flagged_classes",
        summary
            .iter()
            .filter(|(_, s)| s.strategies >= 2)
            .map(|(c, _)| c.clone())
            .collect::<Vec<_>>(),
    );
    Ok(vec![f])
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "salience",
    design: super::Design::Proportion,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: None,
    shardable: false,
    clips: false,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Two well separated blobs: two zero eigenvalues (two components), the largest gap
    /// after the second, and k-means recovers the blobs.
    #[test]
    fn two_blobs_give_two_strategies() {
        let mut rng = crate::rng::stream(0, "test", 0, 0);
        let mut rows = Vec::new();
        for i in 0..20 {
            let (a, b): (f32, f32) = (rng.random::<f32>() * 0.1, rng.random::<f32>() * 0.1);
            rows.extend(if i < 10 { [1.0 + a, b] } else { [a, 1.0 + b] });
        }
        let x = Tensor::from_slice(&rows).view([20, 2]);
        let (vals, vecs) = spectrum(&x, 6);
        let vals: Vec<f64> = Vec::try_from(vals).unwrap();
        let (k, _) = eigengap(&vals, 6);
        assert_eq!(k, 2, "{vals:?}");
        let emb: Vec<Vec<f64>> = (0..20)
            .map(|r| Vec::try_from(vecs.narrow(1, 0, 2).get(r)).unwrap())
            .collect();
        let a = kmeans(&emb, 2, 0, 0, 5);
        assert!(a[..10].iter().all(|c| *c == a[0]) && a[10..].iter().all(|c| *c == a[10]));
        assert_ne!(a[0], a[10]);
    }
}
