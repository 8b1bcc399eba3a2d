//! Data sets: single images, flat folders, ImageFolder trees and CSV manifests, streamed in batches.
pub mod image;
pub mod video;

use crate::config::Preprocess;
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

const IMAGE_EXTS: &[&str] = &["png", "jpg", "jpeg"];

pub(crate) fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// One entry of a data set: a file and, when known, its class index.
/// sha256 of a file, hex (streamed).
pub fn sha256_file(p: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(p)
        .map_err(|e| Error::data(p, format!("cannot read: {e}"), "check the path"))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)
        .map_err(|e| Error::data(p, format!("cannot read: {e}"), "check the path"))?;
    Ok(format!("{:x}", h.finalize()))
}

/// sha256 of an image or `.npy` clip file; for a clip folder, of its files' names and bytes
/// in name order.
pub fn sha256_item(p: &Path) -> Result<String> {
    if !p.is_dir() {
        return sha256_file(p);
    }
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in sorted_entries(p)? {
        if f.is_file() {
            h.update(f.file_name().map(|n| n.as_encoded_bytes()).unwrap_or(b""));
            h.update([0u8]);
            h.update(sha256_file(&f)?.as_bytes());
        }
    }
    Ok(format!("{:x}", h.finalize()))
}

/// How the class sub-folders of an ImageFolder tree become class indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelRule {
    /// torchvision's ImageFolder: the position of the folder in sorted order (0, 1, ...).
    FolderIndex,
    /// The folder's name is the class index (`207/` holds class 207).
    FolderName,
}

impl LabelRule {
    pub fn name(self) -> &'static str {
        match self {
            LabelRule::FolderIndex => "folder-index",
            LabelRule::FolderName => "folder-name",
        }
    }
}

/// What [`Dataset::relabel`] decided, for the user.
#[derive(Debug, Clone, Default)]
pub struct LabelInfo {
    /// Which rule numbered the classes, when it matters (said before the run).
    pub note: Option<String>,
    /// The other rule's labels, when folder names are integers and the rules disagree (so a
    /// pre-flight check can say which one fits the model).
    pub alternative: Option<(LabelRule, Vec<Option<i64>>)>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub path: PathBuf,
    pub label: Option<i64>,
}

/// An ordered list of images; only paths are held, pixels are decoded per batch.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub items: Vec<Item>,
    /// Class names from ImageFolder sub-folder names (sorted, as torchvision does).
    pub folder_classes: Option<Vec<String>>,
}

pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::data(dir, format!("cannot list folder: {e}"), "check the path"))?;
    let mut v = Vec::new();
    for e in rd {
        let e =
            e.map_err(|e| Error::data(dir, format!("cannot list folder: {e}"), "check the path"))?;
        v.push(e.path());
    }
    v.sort();
    Ok(v)
}

impl Dataset {
    /// The data set of CLI inputs as `pre` reads them: images, or clips for a video model.
    pub fn open(inputs: &[PathBuf], pre: &Preprocess) -> Result<Dataset> {
        if pre.frames.is_some() {
            Dataset::clips(inputs)
        } else {
            Dataset::from_inputs(inputs)
        }
    }

    /// Clips from CLI inputs (`data::video`): a clip (a folder of frames or a `.npy`
    /// file), a folder of clips, an ImageFolder tree of clips (one sub-folder per class),
    /// or a CSV manifest whose paths are clips.
    pub fn clips(inputs: &[PathBuf]) -> Result<Dataset> {
        Dataset::merged(inputs, Dataset::clips_of)
    }

    /// The items of several inputs in order; ImageFolder inputs must have the same classes.
    fn merged(inputs: &[PathBuf], part_of: impl Fn(&Path) -> Result<Dataset>) -> Result<Dataset> {
        let mut ds = Dataset::default();
        for input in inputs {
            let part = part_of(input)?;
            if part.folder_classes.is_some() {
                if ds.folder_classes.is_some() && ds.folder_classes != part.folder_classes {
                    return Err(Error::data(
                        input,
                        "its class sub-folders differ from an earlier input's",
                        "pass ImageFolder trees with the same class folders, or one at a time",
                    ));
                }
                ds.folder_classes = part.folder_classes;
            }
            ds.items.extend(part.items);
        }
        Ok(ds)
    }

    fn clips_of(input: &Path) -> Result<Dataset> {
        let none = || {
            Error::data(
                input,
                "no clips found",
                "give clips as folders of frames (PNG/JPEG) or uint8 .npy files [T,H,W,C], a folder of them (optionally one sub-folder per class), or a CSV manifest with a `path,label` header",
            )
        };
        let one = |path: &Path| Dataset {
            items: vec![Item {
                path: path.to_path_buf(),
                label: None,
            }],
            folder_classes: None,
        };
        let meta = std::fs::metadata(input)
            .map_err(|e| Error::data(input, format!("cannot open: {e}"), "check the path"))?;
        if !meta.is_dir() {
            let ext = input.extension().and_then(|e| e.to_str()).unwrap_or("");
            return if ext.eq_ignore_ascii_case("csv") {
                Dataset::from_manifest(input)
            } else if video::is_clip_file(input) {
                Ok(one(input))
            } else {
                Err(Error::data(
                    input,
                    "is not a clip",
                    "a video model reads clips: folders of frames or uint8 .npy files [T,H,W,C]",
                ))
            };
        }
        if video::is_clip_dir(input) {
            return Ok(one(input));
        }
        let clips_in = |dir: &Path| -> Result<Vec<PathBuf>> {
            Ok(sorted_entries(dir)?
                .into_iter()
                .filter(|p| video::is_clip_file(p) || video::is_clip_dir(p))
                .collect())
        };
        let entries = sorted_entries(input)?;
        let classes: Vec<&PathBuf> = entries
            .iter()
            .filter(|p| p.is_dir() && !video::is_clip_dir(p))
            .collect();
        let ds = if classes.is_empty() {
            Dataset {
                items: clips_in(input)?
                    .into_iter()
                    .map(|path| Item { path, label: None })
                    .collect(),
                folder_classes: None,
            }
        } else {
            let mut items = Vec::new();
            let mut names = Vec::new();
            for (idx, sub) in classes.iter().enumerate() {
                names.push(
                    sub.file_name()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
                items.extend(clips_in(sub)?.into_iter().map(|path| Item {
                    path,
                    label: Some(idx as i64),
                }));
            }
            Dataset {
                items,
                folder_classes: Some(names),
            }
        };
        if ds.items.is_empty() {
            return Err(none());
        }
        Ok(ds)
    }

    /// Builds a data set from CLI inputs: image files, folders (ImageFolder or flat) and `.csv` manifests.
    pub fn from_inputs(inputs: &[PathBuf]) -> Result<Dataset> {
        let ds = Dataset::merged(inputs, Dataset::from_input)?;
        if ds.items.is_empty() {
            return Err(Error::data(
                inputs.first().map(PathBuf::as_path).unwrap_or(Path::new("")),
                "no images found",
                "give PNG/JPEG files, a folder of them (optionally one sub-folder per class), or a CSV manifest with a `path,label` header",
            ));
        }
        Ok(ds)
    }

    fn from_input(input: &Path) -> Result<Dataset> {
        let meta = std::fs::metadata(input)
            .map_err(|e| Error::data(input, format!("cannot open: {e}"), "check the path"))?;
        if meta.is_dir() {
            return Dataset::from_dir(input);
        }
        let ext = input.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext.eq_ignore_ascii_case("csv") {
            return Dataset::from_manifest(input);
        }
        Ok(Dataset {
            items: vec![Item {
                path: input.to_path_buf(),
                label: None,
            }],
            folder_classes: None,
        })
    }

    /// ImageFolder layout when the folder has sub-folders (one per class, sorted), else a flat folder.
    pub fn from_dir(dir: &Path) -> Result<Dataset> {
        let entries = sorted_entries(dir)?;
        let subdirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
        if subdirs.is_empty() {
            let items: Vec<Item> = entries
                .iter()
                .filter(|p| is_image(p))
                .map(|p| Item {
                    path: p.clone(),
                    label: None,
                })
                .collect();
            if items.is_empty() {
                return Err(Error::data(
                    dir,
                    "folder holds no PNG or JPEG images",
                    "point at a folder of images, or at an ImageFolder tree (one sub-folder per class)",
                ));
            }
            return Ok(Dataset {
                items,
                folder_classes: None,
            });
        }
        let mut items = Vec::new();
        let mut classes = Vec::new();
        for (idx, sub) in subdirs.iter().enumerate() {
            classes.push(
                sub.file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            for p in sorted_entries(sub)? {
                if p.is_file() && is_image(&p) {
                    items.push(Item {
                        path: p,
                        label: Some(idx as i64),
                    });
                }
            }
        }
        if items.is_empty() {
            return Err(Error::data(
                dir,
                "ImageFolder tree holds no PNG or JPEG images in its class sub-folders",
                "put images in <folder>/<class>/*.png",
            ));
        }
        Ok(Dataset {
            items,
            folder_classes: Some(classes),
        })
    }

    /// CSV manifest with a header containing `path` and optionally `label`; relative paths
    /// resolve against the manifest's folder.
    pub fn from_manifest(csv_path: &Path) -> Result<Dataset> {
        let base = csv_path.parent().unwrap_or(Path::new("."));
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(csv_path)
            .map_err(|e| {
                Error::data(
                    csv_path,
                    format!("cannot read manifest: {e}"),
                    "check the path",
                )
            })?;
        let headers = rdr
            .headers()
            .map_err(|e| {
                Error::data(
                    csv_path,
                    format!("bad CSV header: {e}"),
                    "the first line must be `path,label`",
                )
            })?
            .clone();
        let pcol = headers.iter().position(|h| h == "path").ok_or_else(|| {
            Error::data(
                csv_path,
                "manifest has no `path` column",
                "make the first line `path,label`",
            )
        })?;
        let lcol = headers.iter().position(|h| h == "label");
        let mut items = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| {
                Error::data(csv_path, format!("line {line}: {e}"), "fix the CSV row")
            })?;
            let p = rec.get(pcol).unwrap_or("");
            if p.is_empty() {
                return Err(Error::data(
                    csv_path,
                    format!("line {line}: empty path"),
                    "fill in the path",
                ));
            }
            let label = match lcol.and_then(|c| rec.get(c)).filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => Some(s.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                    Error::data(
                        csv_path,
                        format!("line {line}: label `{s}` is not a class index"),
                        "labels are non-negative integers (the logit index)",
                    )
                })?),
            };
            let path = Path::new(p);
            let path = if path.is_absolute() {
                path.to_path_buf()
            } else {
                base.join(path)
            };
            items.push(Item { path, label });
        }
        if items.is_empty() {
            return Err(Error::data(
                csv_path,
                "manifest lists no images",
                "add `path,label` rows",
            ));
        }
        Ok(Dataset {
            items,
            folder_classes: None,
        })
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Every image with its file hash, in data-set order.
    pub fn manifest(&self) -> Result<Vec<crate::report::ImageRecord>> {
        self.items
            .par_iter()
            .enumerate()
            .map(|(index, it)| {
                Ok(crate::report::ImageRecord {
                    index,
                    path: it.path.display().to_string(),
                    sha256: sha256_item(&it.path)?,
                })
            })
            .collect()
    }

    /// Numbers the class folders of an ImageFolder tree: by `class_names` when every folder
    /// is one of them, else by `rule` (default folder-index, torchvision's). Folder names that
    /// are all integers make the two rules disagree silently in other tools; here the
    /// rule in force is said, and the other rule's labels are kept for the pre-flight check.
    pub fn relabel(
        &mut self,
        rule: Option<LabelRule>,
        class_names: Option<&[String]>,
        origin: &str,
    ) -> Result<LabelInfo> {
        let Some(folders) = self.folder_classes.clone() else {
            return Ok(LabelInfo::default());
        };
        let folder_of = |l: Option<i64>| l.and_then(|l| folders.get(l as usize));
        let ints: Option<Vec<i64>> = folders
            .iter()
            .map(|f| f.parse::<i64>().ok().filter(|v| *v >= 0))
            .collect();
        let mut info = LabelInfo::default();
        if let (None, Some(names)) = (rule, class_names) {
            let pos: Vec<Option<usize>> = folders
                .iter()
                .map(|f| names.iter().position(|n| n == f))
                .collect();
            let matched = pos.iter().filter(|p| p.is_some()).count();
            if matched == folders.len() {
                let same = pos.iter().enumerate().all(|(i, p)| *p == Some(i));
                for it in &mut self.items {
                    let f = folder_of(it.label).cloned();
                    it.label = f
                        .and_then(|f| names.iter().position(|n| *n == f))
                        .map(|p| p as i64);
                }
                if !same {
                    info.note = Some(format!(
                        "class folders mapped to [model] class_names by name ({} folders; e.g. `{}` -> class {})",
                        folders.len(),
                        folders[0],
                        pos[0].unwrap_or_default()
                    ));
                }
                return Ok(info);
            }
            if matched > 0 {
                let missing: Vec<&str> = folders
                    .iter()
                    .zip(&pos)
                    .filter(|(_, p)| p.is_none())
                    .map(|(f, _)| f.as_str())
                    .take(5)
                    .collect();
                return Err(Error::config(
                    origin,
                    format!(
                        "{matched} of {} class folders are named in [model] class_names, but not {}",
                        folders.len(),
                        missing.join(", ")
                    ),
                    "name every class folder as in class_names, or set [model] labels = \"folder-index\" to number folders by position",
                ));
            }
        }
        let by_name = |items: &[Item], ints: &[i64]| -> Vec<Option<i64>> {
            items
                .iter()
                .map(|it| it.label.map(|l| ints[l as usize]))
                .collect()
        };
        match (rule, &ints) {
            (Some(LabelRule::FolderName), None) => {
                let bad = folders
                    .iter()
                    .find(|f| f.parse::<i64>().is_err())
                    .cloned()
                    .unwrap_or_default();
                Err(Error::config(
                    origin,
                    format!("[model] labels = \"folder-name\", but class folder `{bad}` is not a class index"),
                    "name class folders by the model's class index (e.g. 207/), or use labels = \"folder-index\"",
                ))
            }
            (Some(LabelRule::FolderName), Some(ints)) => {
                let labels = by_name(&self.items, ints);
                let old: Vec<Option<i64>> = self.items.iter().map(|it| it.label).collect();
                for (it, l) in self.items.iter_mut().zip(labels) {
                    it.label = l;
                }
                if old != self.items.iter().map(|it| it.label).collect::<Vec<_>>() {
                    info.alternative = Some((LabelRule::FolderIndex, old));
                }
                Ok(info)
            }
            (rule, Some(ints)) => {
                let labels = by_name(&self.items, ints);
                let current: Vec<Option<i64>> = self.items.iter().map(|it| it.label).collect();
                if labels != current {
                    if rule.is_none() {
                        let k = ints
                            .iter()
                            .enumerate()
                            .find(|(i, v)| **v != *i as i64)
                            .map(|(i, _)| i)
                            .unwrap_or(0);
                        info.note = Some(format!(
                            "class folders are named by integers; they are numbered by sorted position as torchvision's ImageFolder does (folder `{}` -> class {k}). If the folder names are the model's class indices, set [model] labels = \"folder-name\"; set labels = \"folder-index\" to silence this note",
                            folders[k]
                        ));
                    }
                    info.alternative = Some((LabelRule::FolderName, labels));
                }
                Ok(info)
            }
            _ => Ok(info),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Puts the images in a seeded random order (sequential `check`): each image's place is
    /// a hash of the seed and its path relative to `root`, so the order does not depend on
    /// how the list was assembled or where the data set lies, and adding an image does not
    /// move the others. Returns, for each new position, the image's old position.
    pub fn shuffle(&mut self, seed: u64, root: &Path) -> Vec<usize> {
        let base = if root.is_file() {
            root.parent().unwrap_or(Path::new(""))
        } else {
            root
        };
        let key = |it: &Item| {
            let rel = it.path.strip_prefix(base).unwrap_or(&it.path);
            crate::rng::derive(seed, &["image-order", &rel.to_string_lossy()])
        };
        let mut order: Vec<(u64, usize)> = self
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| (key(it), i))
            .collect();
        order.sort_unstable();
        let old = std::mem::take(&mut self.items);
        self.items = order.iter().map(|&(_, i)| old[i].clone()).collect();
        order.into_iter().map(|(_, i)| i).collect()
    }

    /// Index ranges of consecutive batches.
    pub fn batch_ranges(&self, batch_size: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
        let n = self.items.len();
        let bs = batch_size.max(1);
        (0..n.div_ceil(bs)).map(move |b| b * bs..((b + 1) * bs).min(n))
    }

    /// Decodes a batch (in parallel) into a normalised `[B,C,H,W]` tensor on `device`.
    pub fn load_batch(
        &self,
        range: std::ops::Range<usize>,
        p: &Preprocess,
        device: Device,
    ) -> Result<Batch> {
        let items = &self.items[range.clone()];
        let decoded: Vec<image::Decoded> = items
            .par_iter()
            .map(|it| match p.frames {
                Some(_) => video::decode_clip(&it.path, p),
                None => image::decode_file(&it.path, p),
            })
            .collect::<Result<_>>()?;
        let [_, h, w] = p.input_shape().map(|v| v as usize);
        let mut flat = Vec::with_capacity(decoded.len() * p.channels * h * w);
        for d in &decoded {
            flat.extend_from_slice(&d.pixels);
        }
        let x01 = Tensor::from_slice(&flat).view([
            decoded.len() as i64,
            p.channels as i64,
            h as i64,
            w as i64,
        ]);
        let x = normalise(&x01, p).to_device(device);
        Ok(Batch {
            indices: range,
            x,
            labels: items.iter().map(|i| i.label).collect(),
            paths: items.iter().map(|i| i.path.clone()).collect(),
            displays: decoded.into_iter().map(|d| d.display).collect(),
        })
    }
}

/// `(x01 - mean) / std` per channel.
pub fn normalise(x01: &Tensor, p: &Preprocess) -> Tensor {
    let c = p.channels as i64;
    let mean = Tensor::from_slice(&p.mean())
        .view([1, c, 1, 1])
        .to_device(x01.device());
    let std = Tensor::from_slice(&p.std())
        .view([1, c, 1, 1])
        .to_device(x01.device());
    (x01 - mean) / std
}

/// `x * std + mean` per channel: model space back to [0,1] pixels.
pub fn denormalise(x: &Tensor, p: &Preprocess) -> Tensor {
    let c = p.channels as i64;
    let mean = Tensor::from_slice(&p.mean())
        .view([1, c, 1, 1])
        .to_device(x.device());
    let std = Tensor::from_slice(&p.std())
        .view([1, c, 1, 1])
        .to_device(x.device());
    x * std + mean
}

/// A decoded batch; `indices` are positions in the data set (they key per-image seeds).
pub struct Batch {
    pub indices: std::ops::Range<usize>,
    pub x: Tensor,
    pub labels: Vec<Option<i64>>,
    pub paths: Vec<PathBuf>,
    pub displays: Vec<::image::RgbImage>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.paths.len()
    }
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(names: &[&str]) -> Dataset {
        Dataset {
            items: names
                .iter()
                .map(|n| Item {
                    path: PathBuf::from("/data").join(n),
                    label: None,
                })
                .collect(),
            folder_classes: None,
        }
    }

    fn names(d: &Dataset) -> Vec<String> {
        d.items
            .iter()
            .map(|i| i.path.display().to_string())
            .collect()
    }

    /// The order is the seed's, whatever the listing order or where the data set lies, an
    /// added image does not move the others, and the returned map undoes the shuffle.
    #[test]
    fn the_seeded_order_depends_on_the_seed_and_the_images_only() {
        let all: Vec<String> = (0..50).map(|i| format!("c{}/img{i}.png", i % 5)).collect();
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut a = items(&refs);
        let before = names(&a);
        let map = a.shuffle(3, Path::new("/data"));
        assert_ne!(names(&a), before, "shuffled");
        for (new, old) in map.iter().enumerate() {
            assert_eq!(names(&a)[new], before[*old]);
        }
        let mut rev: Vec<&str> = refs.clone();
        rev.reverse();
        let mut b = items(&rev);
        b.shuffle(3, Path::new("/data"));
        assert_eq!(names(&a), names(&b), "listing order does not matter");
        // Moved elsewhere: the same relative order.
        let mut c = Dataset {
            items: a
                .items
                .iter()
                .map(|i| Item {
                    path: Path::new("/elsewhere").join(i.path.strip_prefix("/data").unwrap()),
                    label: None,
                })
                .collect(),
            folder_classes: None,
        };
        c.shuffle(3, Path::new("/elsewhere"));
        let rel = |d: &Dataset, root: &str| -> Vec<String> {
            d.items
                .iter()
                .map(|i| i.path.strip_prefix(root).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(rel(&a, "/data"), rel(&c, "/elsewhere"));
        // One image fewer: the others keep their relative order.
        let mut d = items(&refs[1..]);
        d.shuffle(3, Path::new("/data"));
        let without: Vec<String> = names(&a)
            .into_iter()
            .filter(|n| !n.ends_with("/img0.png"))
            .collect();
        assert_eq!(names(&d), without);
        let mut e = items(&refs);
        e.shuffle(4, Path::new("/data"));
        assert_ne!(names(&a), names(&e), "another seed, another order");
    }
}
