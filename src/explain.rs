//! `xaudit explain`: attribution maps for every image of a data set, streamed in batches.
//! Outputs are staged in a hidden folder and moved into place only when every image
//! succeeded, so a failed run leaves no half-written results.
use crate::attribution::{aggregate, normalize, Aggregate, Method, MethodSpec, Normalize, Score};
use crate::config::Preprocess;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Which class each map explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The model's top-1 class on the clean image (every reference implementation's default).
    Predicted,
    /// The data set's label (ImageFolder folder or manifest `label`).
    Label,
    Index(i64),
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "predicted" | "pred" => Ok(Target::Predicted),
            "label" => Ok(Target::Label),
            _ => s
                .parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .map(Target::Index)
                .ok_or_else(|| format!("`{s}`: use predicted, label or a class index")),
        }
    }
}

pub struct Request {
    pub method: MethodSpec,
    pub target: Target,
    pub score: Score,
    pub aggregate: Aggregate,
    pub normalize: Normalize,
    pub batch_size: usize,
    pub internal_batch: usize,
    pub seed: u64,
    pub out_dir: PathBuf,
    /// Also write the unaggregated `[C,H,W]` attribution.
    pub write_raw: bool,
    pub png_min_side: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageRecord {
    pub index: usize,
    pub path: PathBuf,
    pub label: Option<i64>,
    pub predicted: i64,
    pub predicted_name: String,
    pub probability: f64,
    pub target: i64,
    pub target_name: String,
    pub diagnostics: Vec<(String, f64)>,
    pub map_file: String,
    pub png_file: String,
    pub raw_file: Option<String>,
    /// With view references: the other side of the pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewRecord>,
    /// Video models: the share of the map's absolute mass in each frame (sums to 1); the
    /// map file is then `[T,H,W]` and the PNG a contact sheet of the frames.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_mass: Option<Vec<f64>>,
}

/// The second view of an image, explained against the image's own embedding: the same
/// method on the same cosine similarity from the other side (Sammani et al. 2022 explain
/// both images of a pair).
#[derive(Debug, Clone, Serialize)]
pub struct ViewRecord {
    /// Cosine similarity of the image's and its view's embeddings.
    pub similarity: f64,
    /// The augmentation that made the view (`none` for a partner image).
    pub augmentation: String,
    /// `reference = "image"`: the partner image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    pub map_file: String,
    pub png_file: String,
    /// Image overlay and view overlay side by side.
    pub pair_file: String,
}

/// Explaining both sides of pairs: `other` is the model scoring the partners (views or
/// partner images) against the clean images' embeddings (`References::swapped`).
pub struct Pairs<'a> {
    pub other: &'a Model,
    /// The views' augmentation; None for partner images.
    pub augment: Option<crate::embedding::ViewAugment>,
    /// The configuration (partner images' folder).
    pub config: &'a crate::config::Config,
    pub run: crate::embedding::RunImages<'a>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub xaudit_version: &'static str,
    pub model: PathBuf,
    pub device: String,
    pub method: MethodSpec,
    pub target: Target,
    pub score: Score,
    pub aggregate: Aggregate,
    pub normalize: Normalize,
    pub seed: u64,
    pub preprocess: PreprocessRecord,
    pub images: Vec<ImageRecord>,
}

#[derive(Debug, Serialize)]
pub struct PreprocessRecord {
    pub channels: usize,
    pub size: [usize; 2],
    pub resize: Option<usize>,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_stride: Option<usize>,
}

/// A folder whose contents move into `final_dir` on success and vanish on failure.
struct Staging {
    dir: PathBuf,
    final_dir: PathBuf,
    done: bool,
}

impl Staging {
    fn new(final_dir: &Path) -> Result<Staging> {
        std::fs::create_dir_all(final_dir)
            .map_err(|e| Error::output(final_dir, format!("cannot create: {e}")))?;
        let dir = final_dir.join(format!(".xaudit-partial-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::output(&dir, format!("cannot create: {e}")))?;
        Ok(Staging {
            dir,
            final_dir: final_dir.to_path_buf(),
            done: false,
        })
    }

    fn commit(mut self) -> Result<()> {
        let rd =
            std::fs::read_dir(&self.dir).map_err(|e| Error::output(&self.dir, e.to_string()))?;
        for e in rd {
            let e = e.map_err(|e| Error::output(&self.dir, e.to_string()))?;
            let to = self.final_dir.join(e.file_name());
            std::fs::rename(e.path(), &to).map_err(|err| Error::output(&to, err.to_string()))?;
        }
        let _ = std::fs::remove_dir(&self.dir);
        self.done = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.dir);
            // Leave no empty output folder behind either.
            let _ = std::fs::remove_dir(&self.final_dir);
        }
    }
}

fn class_name(names: Option<&[String]>, k: i64) -> String {
    names
        .and_then(|n| n.get(k as usize))
        .cloned()
        .unwrap_or_else(|| k.to_string())
}

/// Runs the request; `on_image` sees each record as soon as its batch is done.
pub fn run(
    model: &Model,
    data: &Dataset,
    pre: &Preprocess,
    class_names: Option<&[String]>,
    req: &Request,
    pairs: Option<&Pairs>,
    mut on_image: impl FnMut(&ImageRecord),
) -> Result<Summary> {
    if let Target::Index(k) = req.target {
        if k >= model.num_classes {
            return Err(Error::config(
                "--target",
                format!(
                    "class index {k} but the model has {} classes",
                    model.num_classes
                ),
                format!("use an index below {}", model.num_classes),
            ));
        }
    }
    let staging = Staging::new(&req.out_dir)?;
    // The audits' runner: the same batching, attribution, finite checks and seeding.
    let quiet = |_: usize| {};
    let run = crate::audit::RunCtx::new(
        model,
        data,
        pre,
        req.seed,
        req.batch_size,
        req.internal_batch,
        &quiet,
    );
    let method = Method {
        spec: req.method.clone(),
        score: req.score,
        aggregate: req.aggregate,
    };
    let mut records = Vec::with_capacity(data.len());
    run.for_batches(|batch| {
        let what = format!(
            "a batch containing {}",
            batch
                .paths
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        let (pred_v, pmax_v) = model.decide(&model.logits(&batch.x)?, &what)?;
        let mut targets = Vec::with_capacity(batch.len());
        for (i, p) in pred_v.iter().enumerate() {
            targets.push(match req.target {
                Target::Predicted => *p,
                Target::Index(k) => k,
                Target::Label => match batch.labels[i] {
                    Some(l) if l < model.num_classes => l,
                    Some(l) => {
                        return Err(Error::data(
                            &batch.paths[i],
                            format!("label {l} is not a class of the model ({} classes)", model.num_classes),
                            "fix the label, or explain the predicted class with --target predicted",
                        ))
                    }
                    None => {
                        return Err(Error::data(
                            &batch.paths[i],
                            "--target label but this image has no label",
                            "use an ImageFolder tree or a manifest with a label column, or --target predicted",
                        ))
                    }
                },
            });
        }
        let ids: Vec<u64> = batch
            .indices
            .clone()
            .map(|i| crate::audit::run::eval_id(i, 0))
            .collect();
        let attr = run.attribution(model, &method, &batch.x, &targets, &ids)?;
        let maps = normalize(&aggregate(&attr.maps, req.aggregate), req.normalize)
            .to_kind(Kind::Float)
            .to_device(Device::Cpu);
        let raw = attr.maps.to_kind(Kind::Float).to_device(Device::Cpu);
        let (h, w) = (maps.size()[1] as usize, maps.size()[2] as usize);
        // A clip's map is written as [T,H,W] (its sheet unpacked); the PNG stays the sheet.
        let frames = model.clip.map(|c| c.frames);
        let map_shape: Vec<u64> = match frames {
            Some(t) => vec![t as u64, h as u64, w as u64 / t as u64],
            None => vec![h as u64, w as u64],
        };
        let frame_mass: Option<Vec<Vec<f64>>> = match frames {
            Some(t) => {
                let m = crate::clip::frame_mass(&maps, t);
                Some(Vec::<Vec<f64>>::try_from(&m)?)
            }
            None => None,
        };
        // The other side of each pair: the view, scored against its own image.
        let side = match pairs {
            Some(p) => {
                let t = Tensor::from_slice(&targets);
                let xv = model
                    .embedding
                    .as_ref()
                    .and_then(|r| r.partner_pixels(&t, model.device))
                    .ok_or_else(|| {
                        crate::error::Error::NotApplicable("paired references without pixels".into())
                    })?;
                let a = run.attribution(p.other, &method, &xv, &targets, &ids)?;
                let m = normalize(&aggregate(&a.maps, req.aggregate), req.normalize)
                    .to_kind(Kind::Float)
                    .to_device(Device::Cpu);
                let t = Tensor::from_slice(&targets).to_device(model.device);
                let r = model.embedding.as_ref().map(|r| r.temperature).unwrap_or(1.0);
                let sim = crate::attribution::target_score(&model.logits(&batch.x)?, &t, crate::attribution::Score::Logit) * r;
                let sim = Vec::<f64>::try_from(sim.to_kind(Kind::Double).to_device(Device::Cpu))?;
                let shown = crate::data::denormalise(&xv, pre).to_device(Device::Cpu);
                Some((m, sim, shown))
            }
            None => None,
        };
        for (i, idx) in batch.indices.clone().enumerate() {
            let stem = format!(
                "{idx:05}_{}",
                batch.paths[i]
                    .file_stem()
                    .map(|s| s.to_string_lossy())
                    .unwrap_or_default()
            );
            let map: Vec<f32> = Vec::try_from(maps.get(i as i64).flatten(0, -1))?;
            let map_file = format!("{stem}.npy");
            let frame_major: Vec<f32> = match frames {
                Some(t) => Vec::try_from(
                    crate::clip::map_frames(&maps.narrow(0, i as i64, 1), t).flatten(0, -1),
                )?,
                None => map.clone(),
            };
            crate::npy::write_f32(&staging.dir.join(&map_file), &map_shape, &frame_major)?;
            let png_file = format!("{stem}.png");
            match frames {
                Some(t) => crate::render::heatmap::write_frames(
                    &staging.dir.join(&png_file),
                    &batch.displays[i],
                    &map,
                    req.png_min_side,
                    t as u32,
                )?,
                None => crate::render::heatmap::write_overlay(
                    &staging.dir.join(&png_file),
                    &batch.displays[i],
                    &map,
                    req.png_min_side,
                )?,
            }
            let raw_file = if req.write_raw {
                let r = match frames {
                    Some(t) => crate::clip::to_clip(&raw.narrow(0, i as i64, 1), t).get(0),
                    None => raw.get(i as i64),
                };
                let shape: Vec<u64> = r.size().iter().map(|v| *v as u64).collect();
                let v: Vec<f32> = Vec::try_from(r.flatten(0, -1))?;
                let f = format!("{stem}.raw.npy");
                crate::npy::write_f32(&staging.dir.join(&f), &shape, &v)?;
                Some(f)
            } else {
                None
            };
            let view = match (&side, pairs) {
                (Some((m, sim, shown)), Some(p)) => {
                    let vmap: Vec<f32> = Vec::try_from(m.get(i as i64).flatten(0, -1))?;
                    let map_file = format!("{stem}.view.npy");
                    crate::npy::write_f32(
                        &staging.dir.join(&map_file),
                        &[h as u64, w as u64],
                        &vmap,
                    )?;
                    let display = crate::render::heatmap::rgb(&shown.get(i as i64));
                    let png_file = format!("{stem}.view.png");
                    crate::render::heatmap::write_overlay(
                        &staging.dir.join(&png_file),
                        &display,
                        &vmap,
                        req.png_min_side,
                    )?;
                    let pair_file = format!("{stem}.pair.png");
                    crate::render::heatmap::write_pair(
                        &staging.dir.join(&pair_file),
                        (&batch.displays[i], &map),
                        (&display, &vmap),
                        req.png_min_side,
                    )?;
                    Some(ViewRecord {
                        similarity: sim[i],
                        augmentation: match &p.augment {
                            Some(a) => crate::perturb::describe(
                                &a.ops(p.run.seed, &p.run.key(&batch.paths[i])),
                            ),
                            None => "none".into(),
                        },
                        partner: match &p.augment {
                            Some(_) => None,
                            None => Some(
                                crate::embedding::partner_of(p.config, &p.run, &batch.paths[i])?
                                    .display()
                                    .to_string(),
                            ),
                        },
                        map_file,
                        png_file,
                        pair_file,
                    })
                }
                _ => None,
            };
            let rec = ImageRecord {
                index: idx,
                path: batch.paths[i].clone(),
                label: batch.labels[i],
                predicted: pred_v[i],
                predicted_name: class_name(class_names, pred_v[i]),
                probability: pmax_v[i],
                target: targets[i],
                target_name: class_name(class_names, targets[i]),
                diagnostics: attr
                    .diagnostics
                    .iter()
                    .map(|(k, v)| (k.clone(), v[i]))
                    .collect(),
                map_file,
                png_file,
                raw_file,
                view,
                frame_mass: frame_mass.as_ref().map(|f| f[i].clone()),
            };
            on_image(&rec);
            records.push(rec);
        }
        Ok(())
    })?;
    let summary = Summary {
        xaudit_version: env!("CARGO_PKG_VERSION"),
        model: model.path.clone(),
        device: crate::device::describe(model.device),
        method: req.method.clone(),
        target: req.target,
        score: req.score,
        aggregate: req.aggregate,
        normalize: req.normalize,
        seed: req.seed,
        preprocess: PreprocessRecord {
            channels: pre.channels,
            size: pre.size,
            resize: pre.resize,
            mean: pre.mean(),
            std: pre.std(),
            frames: pre.frames,
            frame_stride: pre.frames.map(|_| pre.frame_stride),
        },
        images: records,
    };
    let js = serde_json::to_vec_pretty(&summary)
        .map_err(|e| Error::output(&req.out_dir, e.to_string()))?;
    let sp = staging.dir.join("summary.json");
    std::fs::write(&sp, js).map_err(|e| Error::output(&sp, e.to_string()))?;
    staging.commit()?;
    Ok(summary)
}
