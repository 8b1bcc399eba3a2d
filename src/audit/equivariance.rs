//! XA201 equivariance: does the explanation follow geometric transforms of the input?
use super::run::{eval_id, map_panel, to_vecs};
use super::Panel;
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::{aggregate, Method};
use crate::error::{Error, Result};
use crate::transform::Transform;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA201",
    name: "equivariance",
    title: "Salience follows geometric transformations (Crum et al. 2023, reconstructed)",
    what: "Whether the explanation of a transformed image is the transformed explanation: S(T x) against T S(x) for flips, quarter turns, small rotations, translations and scalings, on a grid of magnitudes.",
    why: "If the model's evidence moves with the object, its salience must move too. A map that stays put when the image is flipped or shifted is tied to pixel positions or to the method, not to the content, and will mislead anyone reading it on images framed differently from the test set.",
    how: "Default transforms are the label-preserving ones for natural images: horizontal flip, small shifts (5% and 10% of the side) and small rotations (5, 10, 15 degrees); vertical flips (vflip), quarter turns (rot90) and scaling (scale) are opt-in through `transforms`, for domains where they preserve the label (aerial, microscopy, digits with care). For each transform T and magnitude: x' = T(x) (bilinear resampling for non-exact transforms; pixels from outside are black), S(x') is explained for the clean predicted class and compared with T(S(x)) by Pearson correlation over the valid region (pixels whose source lies inside the image); MSE is also recorded. Maps use the method's default channel reduction. Images whose prediction changes under T are excluded for that magnitude and counted. Stochastic methods share their Monte Carlo draws between x and T x, and their noise floor (Pearson between two clean explanations with different seeds) is reported. One result per transform family: the per-image value is the mean over the magnitudes, and a curve of the mean similarity against magnitude is recorded. Reconstructed from the abstract of Crum et al. (the paper's code is not available): label it as such. Video models: the spatial transforms act on every frame alike, and `time-shift` (in the defaults; shifts of `time-shift-frames` = 1 and 2 frames, each both ways, frames from outside the clip black and left out of the comparison) and `time-reverse` (opt-in: reversed time is not label-preserving for motion classes) move the clip in time, so the map must move with it (Li et al. 2021's temporal consistency); on image models the time families are skipped.",
    pass: "Default gate per transform family: the median Pearson is above 0.7 (exact binomial test of the median in the run's error budget; xaudit convention).",
    references: &[
        "Crum, Tinsley, Boyd, Piland, Sweet, Kelley, Bowyer, Czajka. Explain To Me: Salience-Based Explainability for Synthetic Face Detection Models. IEEE TAI 2023, arXiv:2303.11969 (reconstructed)",
        "Lenc, Vedaldi. Understanding image representations by measuring their equivariance and equivalence. CVPR 2015",
        "Li, Wang, Li, Huang, Sato. Towards Visually Explaining Video Understanding Networks with Perturbation. WACV 2021, arXiv:2005.00375",
    ],
    default_metric: "pearson",
    default_direction: Direction::Higher,
    metrics: &["pearson", "mse"],
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Transform families to test.
    #[serde(default = "d_fam")]
    pub transforms: Vec<String>,
    #[serde(default = "d_rot")]
    pub rotate_degrees: Vec<f64>,
    /// Translations as a fraction of the image side (applied along x and along y).
    #[serde(default = "d_tr")]
    pub translate_fraction: Vec<f64>,
    #[serde(default = "d_sc")]
    pub scale_factors: Vec<f64>,
    /// Video models: shifts of the clip in time, in frames (each applied both ways).
    #[serde(default = "d_ts")]
    pub time_shift_frames: Vec<i64>,
}
fn d_fam() -> Vec<String> {
    ["hflip", "translate", "rotate", "time-shift"]
        .map(String::from)
        .to_vec()
}
fn d_ts() -> Vec<i64> {
    vec![1, 2]
}

const FAMILIES: [&str; 8] = [
    "hflip",
    "vflip",
    "rot90",
    "rotate",
    "translate",
    "scale",
    "time-shift",
    "time-reverse",
];

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        for t in &self.transforms {
            if !FAMILIES.contains(&t.as_str()) {
                let hint = crate::suggest::closest(t, &FAMILIES)
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown transform `{t}`: {hint}use some of {}",
                    FAMILIES.join(", ")
                ));
            }
        }
        if self.transforms.is_empty() {
            return Err("transforms is empty: name at least one".into());
        }
        if self.time_shift_frames.iter().any(|s| *s <= 0) {
            return Err("time-shift-frames must be >= 1 (each shift is applied both ways)".into());
        }
        if self.scale_factors.iter().any(|s| !super::positive(*s)) {
            return Err("scale-factors must be > 0".into());
        }
        if self
            .rotate_degrees
            .iter()
            .chain(&self.translate_fraction)
            .any(|v| !v.is_finite())
        {
            return Err("rotate-degrees and translate-fraction must be finite".into());
        }
        Ok(())
    }
}
fn d_rot() -> Vec<f64> {
    vec![5.0, 10.0, 15.0]
}
fn d_tr() -> Vec<f64> {
    vec![0.05, 0.1]
}
fn d_sc() -> Vec<f64> {
    vec![0.9, 1.1]
}

/// A transform of the input: of the image (of every frame of a clip), or of a clip's time axis.
#[derive(Debug, Clone, Copy)]
enum Op {
    Space(Transform),
    /// Output frame t is input frame t - k; frames from outside the clip are `fill`.
    TimeShift(i64),
    TimeReverse,
}

impl Op {
    fn label(&self) -> String {
        match self {
            Op::Space(t) => t.label(),
            Op::TimeShift(k) => format!("time shift {k:+} frames"),
            Op::TimeReverse => "time reversal".into(),
        }
    }

    /// `x` `[B,C,H,W']` (a clip's sheet when `frames` is set).
    fn apply(&self, x: &Tensor, fill: &Tensor, frames: Option<i64>) -> Tensor {
        let (Op::Space(t), None) = (self, frames) else {
            let t_ = frames.unwrap_or(1);
            return match *self {
                Op::Space(tr) => crate::clip::per_frame(x, t_, |f| tr.apply(f, fill)),
                Op::TimeReverse => crate::clip::to_sheet(&crate::clip::to_clip(x, t_).flip([2])),
                Op::TimeShift(k) => {
                    let c = crate::clip::to_clip(x, t_);
                    let n = k.abs().min(t_);
                    let pad = c.narrow(2, 0, n).zeros_like() + fill.unsqueeze(2);
                    let out = if k >= 0 {
                        Tensor::cat(&[pad, c.narrow(2, 0, t_ - n)], 2)
                    } else {
                        Tensor::cat(&[c.narrow(2, n, t_ - n), pad], 2)
                    };
                    crate::clip::to_sheet(&out)
                }
            };
        };
        t.apply(x, fill)
    }

    /// `[H,W']` mask of output pixels whose source lies inside the input.
    fn valid(&self, h: i64, w: i64, frames: Option<i64>, device: Device) -> Tensor {
        let Some(t) = frames else {
            return match self {
                Op::Space(tr) => tr.valid(h, w, device),
                _ => Tensor::ones([h, w], (Kind::Bool, device)),
            };
        };
        let fw = w / t;
        match *self {
            Op::Space(tr) => tr.valid(h, fw, device).repeat([1, t]),
            Op::TimeReverse => Tensor::ones([h, w], (Kind::Bool, device)),
            Op::TimeShift(k) => {
                let ones = Tensor::ones([1, 1, h, w], (Kind::Float, device));
                let zero = Tensor::zeros([1, 1, 1, 1], (Kind::Float, device));
                Op::TimeShift(k)
                    .apply(&ones, &zero, frames)
                    .view([h, w])
                    .ge(0.5)
            }
        }
    }
}

/// The transforms of one family, for an `h`×`w` input (a clip's frame when `frames` is
/// set). Time families apply to video models only, quarter turns to square inputs only.
fn family(name: &str, p: &Params, h: i64, w: i64, frames: Option<i64>) -> Result<Vec<Op>> {
    let w = w / frames.unwrap_or(1);
    Ok(match name {
        "time-shift" if frames.is_some() => p
            .time_shift_frames
            .iter()
            .filter(|&&k| k < frames.unwrap_or(1))
            .flat_map(|&k| [Op::TimeShift(k), Op::TimeShift(-k)])
            .collect(),
        "time-reverse" if frames.is_some() => vec![Op::TimeReverse],
        "time-shift" | "time-reverse" => Vec::new(),
        _ => space_family(name, p, h, w)?
            .into_iter()
            .map(Op::Space)
            .collect(),
    })
}

fn space_family(name: &str, p: &Params, h: i64, w: i64) -> Result<Vec<Transform>> {
    Ok(match name {
        "hflip" => vec![Transform::HFlip],
        "vflip" => vec![Transform::VFlip],
        "rot90" if h == w => (1..=3).map(|turns| Transform::Rot90 { turns }).collect(),
        "rot90" => Vec::new(),
        "rotate" => p
            .rotate_degrees
            .iter()
            .map(|&degrees| Transform::Rotate { degrees })
            .collect(),
        "translate" => p
            .translate_fraction
            .iter()
            .flat_map(|&f| {
                [
                    Transform::Translate {
                        dx: (f * w as f64).round(),
                        dy: 0.0,
                    },
                    Transform::Translate {
                        dx: 0.0,
                        dy: (f * h as f64).round(),
                    },
                ]
            })
            .collect(),
        "scale" => p
            .scale_factors
            .iter()
            .map(|&factor| Transform::Scale { factor })
            .collect(),
        other => {
            return Err(Error::config(
                format!("parameters of {}", DOC.code),
                format!("unknown transform `{other}`"),
                format!("use some of {}", FAMILIES.join(", ")),
            ));
        }
    })
}

/// One image at one magnitude: (image, Some((pearson, mse))) or None when the prediction changed.
type Cell = (usize, Option<(f64, f64)>);

/// Pearson and MSE over the valid pixels.
fn compare(a: &[f32], b: &[f32], valid: &[bool]) -> (f64, f64) {
    let (va, vb): (Vec<f32>, Vec<f32>) = a
        .iter()
        .zip(b)
        .zip(valid)
        .filter(|(_, v)| **v)
        .map(|((x, y), _)| (*x, *y))
        .unzip();
    (
        crate::similarity::pearson(&va, &vb),
        crate::similarity::mse(&va, &vb),
    )
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let [_, h, w] = run.model.input_shape;
    let frames = run.model.clip.map(|c| c.frames);
    let fams: Vec<(String, Vec<Op>)> = p
        .transforms
        .iter()
        .map(|n| family(n, &p, h, w, frames).map(|t| (n.clone(), t)))
        .collect::<Result<_>>()?;
    let agg = m.aggregate;
    let (black, _) = run.valid_range();
    // Per family, per magnitude: (image, pearson, mse) or excluded.
    let mut rows: Vec<Vec<Vec<Cell>>> = fams
        .iter()
        .map(|(_, ts)| vec![Vec::new(); ts.len()])
        .collect();
    let mut pics: Vec<BTreeMap<usize, Vec<Panel>>> = vec![BTreeMap::new(); fams.len()];
    let mut floor: Vec<(usize, f64)> = Vec::new();
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let targets: Vec<i64> = clean.iter().map(|c| c.pred).collect();
        let idx: Vec<usize> = b.indices.clone().collect();
        let s0 = aggregate(&run.clean_maps(m, b)?, agg).unsqueeze(1);
        if let Some(alt) = run.noise_maps(m, b)? {
            let a = to_vecs(&aggregate(&alt, agg))?;
            let c = to_vecs(&s0)?;
            floor.extend(
                a.iter()
                    .zip(&c)
                    .zip(&idx)
                    .map(|((x, y), &i)| (i, crate::similarity::pearson(x, y))),
            );
        }
        let zero = Tensor::zeros([1, 1, 1, 1], (Kind::Float, run.device()));
        let mut k = 1u64;
        for (fi, (_, ts)) in fams.iter().enumerate() {
            for (ti, tr) in ts.iter().enumerate() {
                let xt = tr.apply(&b.x, &black, frames);
                let ids: Vec<u64> = idx.iter().map(|&i| eval_id(i, k)).collect();
                k += 1;
                let (st, pred, _) = run.attribute_predict(run.model, m, &xt, &targets, &ids)?;
                let st = aggregate(&st, agg);
                let ts0 = tr.apply(&s0, &zero, frames).squeeze_dim(1);
                let valid: Vec<bool> = Vec::try_from(
                    tr.valid(h, w, frames, run.device())
                        .view([-1])
                        .to_device(Device::Cpu),
                )?;
                let a = to_vecs(&st)?;
                let bb = to_vecs(&ts0)?;
                for j in 0..idx.len() {
                    let v = (pred[j] == targets[j]).then(|| compare(&a[j], &bb[j], &valid));
                    rows[fi][ti].push((idx[j], v));
                    if ti == 0 {
                        let l = tr.label();
                        pics[fi].insert(
                            idx[j],
                            vec![
                                run.image_panel(&b.x.get(j as i64), "original")?,
                                run.image_panel(&xt.get(j as i64), &format!("T x ({l})"))?,
                                map_panel(&st.get(j as i64), "S(T x)")?,
                                map_panel(&ts0.get(j as i64), "T S(x)")?,
                            ],
                        );
                    }
                }
            }
        }
        (run.progress)(idx.len());
        Ok(())
    })?;
    let mut out = Vec::new();
    for (((name, ts), per_t), pictures) in fams.iter().zip(rows).zip(pics) {
        if ts.is_empty() {
            continue;
        }
        let mut f = Finding::new(name);
        f.examples = pictures;
        let n_img = per_t[0].len();
        for r in 0..n_img {
            let i = per_t[0][r].0;
            // Per magnitude: the similarity (NaN where the prediction changed) for the curve,
            // and whether the prediction changed.
            let row: Vec<f64> = per_t
                .iter()
                .map(|col| col[r].1.map_or(f64::NAN, |v| v.0))
                .collect();
            f.keep("curve:pearson", i, &row);
            let flips: Vec<f64> = per_t
                .iter()
                .map(|col| f64::from(u8::from(col[r].1.is_none())))
                .collect();
            f.keep(CHANGED, i, &flips);
            let vals: Vec<(f64, f64)> = per_t.iter().filter_map(|col| col[r].1).collect();
            if vals.is_empty() {
                f.push(
                    i,
                    &[],
                    Some("prediction changed under every magnitude".into()),
                );
            } else {
                let n = vals.len() as f64;
                f.push(
                    i,
                    &[
                        ("pearson", vals.iter().map(|v| v.0).sum::<f64>() / n),
                        ("mse", vals.iter().map(|v| v.1).sum::<f64>() / n),
                    ],
                    None,
                );
            }
        }
        f.defer_curve(
            "pearson",
            "magnitude",
            "Pearson(S(Tx), T S(x))",
            ts.iter().map(|t| t.label()).collect(),
        );
        f.summary(
            "magnitudes",
            ts.iter().map(|t| t.label()).collect::<Vec<_>>(),
        );
        f.summary("fill", "black (pixel 0)");
        super::run::keep_noise_floors(&mut f, "pearson", &floor);
        out.push(f);
    }
    if out.is_empty() {
        return Err(Error::NotApplicable(
            "no transform applies to this input shape (quarter turns need square inputs; time-shift and time-reverse need a video model)".into(),
        ));
    }
    Ok(out)
}

/// Per image and magnitude: 1 when the transform changed the prediction.
const CHANGED: &str = "prediction-changed";

/// Images whose prediction changed, per magnitude, over every image.
fn finish(f: &mut Finding) {
    let magnitudes = f
        .summary
        .get("magnitudes")
        .and_then(|m| m.as_array())
        .map_or(0, |m| m.len());
    let mut changed: Vec<usize> = vec![0; magnitudes];
    for row in f.kept.get(CHANGED).into_iter().flat_map(|m| m.values()) {
        changed.resize(changed.len().max(row.len()), 0);
        for (k, v) in row.iter().enumerate() {
            changed[k] += usize::from(v.is_some_and(|v| v > 0.0));
        }
    }
    f.summary("prediction_changed_per_magnitude", changed);
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "salience",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: Some(finish),
    shardable: true,
    clips: true,
};
