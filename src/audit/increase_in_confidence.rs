//! XA404 increase-in-confidence: does seeing only what the map shows raise the model's
//! confidence more often than the same map placed at random?
use super::faithfulness;
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;

pub static DOC: AuditDoc = AuditDoc {
    code: "XA404",
    name: "increase-in-confidence",
    title: "Increase in Confidence against a randomly placed map, exact McNemar test (Chattopadhay et al. 2018)",
    what: "How often the model becomes more confident when it sees the image only through its explanation, compared with the same map shifted to a random place.",
    why: "Increase in Confidence is Average Drop's companion in the CAM papers: a map that isolates the evidence can remove distractors and raise the score. Counting it against a randomly placed copy of the same map tells a real effect from an image that gains confidence under any dimming.",
    how: "As average-drop (same masks, `area` included): Y = clean probability of the predicted class, O = with the normalised map as the mask, O_random = with the mask cyclically shifted by a seeded random offset. Per image, the map raises confidence when O > Y, the random placement when O_random > Y. The pairs are compared with the exact McNemar test: only discordant images (exactly one of the two raises confidence) carry information, and among them the share where only the random placement does is tested against one half. Concordant images are listed as excluded with that reason. The summary gives IC in % (the share of all images with O > Y, Chattopadhay et al.'s IC) for the map and the random placement.",
    pass: "Default gate: among discordant images, the share where only the random placement raises confidence is below 0.5 (exact one-sided binomial test with a Clopper-Pearson bound, in the run's error budget), i.e. the map raises confidence significantly more often than chance placement. With no discordant image the result is INCONCLUSIVE.",
    references: &[
        "Chattopadhay, Sarkar, Howlader, Balasubramanian. Grad-CAM++: Improved Visual Explanations for Deep Convolutional Networks. WACV 2018, arXiv:1710.11063 (Increase in Confidence)",
        "McNemar. Note on the sampling error of the difference between correlated proportions or percentages. Psychometrika 1947",
    ],
    default_metric: "random-only-increase",
    default_direction: Direction::Lower,
    metrics: &["random-only-increase", "confidence-ratio", "confidence-ratio-random"],
};

/// The same masks as average-drop.
pub type Params = super::average_drop::Params;

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let mut f = Finding::new("");
    let (mut random_only, mut discordant) = (0u64, 0u64);
    run.for_batches(|b| {
        let res = faithfulness::masked_confidences(run, m, b, p.area, DOC.name)?;
        for (i, r) in b.indices.clone().zip(res) {
            let Some(r) = r else {
                f.push(i, &[], Some("flat map: no mask can be made from it".into()));
                continue;
            };
            let (up, up_r) = (r.map > r.clean, r.random > r.clean);
            f.keep(
                RAISED,
                i,
                &[f64::from(u8::from(up)), f64::from(u8::from(up_r))],
            );
            let values = [
                ("random-only-increase", f64::from(u8::from(up_r))),
                ("confidence-ratio", r.map / r.clean),
                ("confidence-ratio-random", r.random / r.clean),
            ];
            if up == up_r {
                f.push(
                    i,
                    &values,
                    Some("concordant: both or neither placement raises confidence (no information for McNemar's test)".into()),
                );
            } else {
                discordant += 1;
                random_only += u64::from(up_r);
                f.push(i, &values, None);
            }
        }
        (run.progress)(b.len());
        Ok(())
    })?;
    // Counts of disjoint image sets add up, so shards merge them by summing.
    f.counts = Some((random_only, discordant));
    Ok(vec![f])
}

/// Per image: (the map raises confidence, the random placement does).
const RAISED: &str = "raised-confidence";

/// IC in % over every image with a mask, and the discordant images.
fn finish(f: &mut Finding) {
    let rows: Vec<(bool, bool)> = f
        .kept
        .get(RAISED)
        .map(|m| {
            m.values()
                .map(|r| {
                    let g = |k: usize| r.get(k).copied().flatten().unwrap_or(0.0) > 0.0;
                    (g(0), g(1))
                })
                .collect()
        })
        .unwrap_or_default();
    let n = rows.len().max(1) as f64;
    let pct = |k: usize| 100.0 * k as f64 / n;
    f.summary(
        "increase_in_confidence_percent",
        pct(rows.iter().filter(|r| r.0).count()),
    );
    f.summary(
        "increase_in_confidence_random_percent",
        pct(rows.iter().filter(|r| r.1).count()),
    );
    f.summary(
        "discordant_images",
        rows.iter().filter(|r| r.0 != r.1).count(),
    );
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "faithfulness",
    design: super::Design::Proportion,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: Some(finish),
    shardable: true,
    clips: true,
};
