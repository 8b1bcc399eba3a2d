//! Video clips: a folder of frames (PNG/JPEG, in file-name order) or a `.npy` array of uint8
//! `[T,H,W,C]` (or `[T,H,W]`), sampled to `[preprocess] frames` frames and laid out as the
//! clip's contact sheet (`crate::clip`).
//!
//! Temporal sampling is the centre clip of most video evaluation code: `frames` frames,
//! `frame-stride` apart, centred in the clip. A clip shorter than that span is refused
//! rather than padded, so no frame the model sees is made up.
use super::image::{decode_file, preprocess, Decoded};
use super::{is_image, sorted_entries};
use crate::config::Preprocess;
use crate::error::{Error, Result};
use image::{DynamicImage, GrayImage, RgbImage};
use std::path::Path;

/// A `.npy` file (a clip in video mode).
pub fn is_clip_file(p: &Path) -> bool {
    p.is_file()
        && p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

/// A folder holding frames directly (and no sub-folder).
pub fn is_clip_dir(p: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(p) else {
        return false;
    };
    let mut frames = false;
    for e in rd.flatten() {
        let q = e.path();
        if q.is_dir() {
            return false;
        }
        frames |= is_image(&q);
    }
    frames
}

/// First index and count of the sampled frames of a clip of `n` frames.
pub fn sample(n: usize, p: &Preprocess) -> Option<Vec<usize>> {
    let t = p.frames.unwrap_or(1);
    let s = p.frame_stride.max(1);
    let span = (t - 1) * s + 1;
    if n < span {
        return None;
    }
    let start = (n - span) / 2;
    Some((0..t).map(|k| start + k * s).collect())
}

fn too_short(path: &Path, n: usize, p: &Preprocess) -> Error {
    let t = p.frames.unwrap_or(1);
    let s = p.frame_stride.max(1);
    Error::data(
        path,
        format!(
            "clip has {n} frame(s); frames = {t} with frame-stride = {s} needs {}",
            (t - 1) * s + 1
        ),
        "lower frames or frame-stride under [preprocess] in xaudit.toml, or remove the clip",
    )
}

/// Reads one clip and lays its sampled, preprocessed frames side by side.
pub fn decode_clip(path: &Path, p: &Preprocess) -> Result<Decoded> {
    let frames: Vec<Decoded> = if path.is_dir() {
        let files: Vec<_> = sorted_entries(path)?
            .into_iter()
            .filter(|f| f.is_file() && is_image(f))
            .collect();
        let pick = sample(files.len(), p).ok_or_else(|| too_short(path, files.len(), p))?;
        pick.iter()
            .map(|&i| decode_file(&files[i], p))
            .collect::<Result<_>>()?
    } else {
        let (shape, data) = read_u8(path)?;
        let (t, h, w, c) = match shape.as_slice() {
            [t, h, w] => (*t, *h, *w, 1),
            [t, h, w, c] if *c == 1 || *c == 3 => (*t, *h, *w, *c),
            _ => {
                return Err(Error::data(
                    path,
                    format!("array has shape {shape:?}"),
                    "save clips as uint8 [T,H,W,C] with C = 1 or 3 (or [T,H,W])",
                ))
            }
        };
        let (t, h, w, c) = (t as usize, h as usize, w as usize, c as usize);
        if h == 0 || w == 0 || (h * w) as u64 > p.max_pixels {
            return Err(Error::data(
                path,
                format!("frames are {w}x{h} pixels"),
                "give frames with at least one pixel and at most max-pixels under [preprocess]",
            ));
        }
        let pick = sample(t, p).ok_or_else(|| too_short(path, t, p))?;
        let frame = h * w * c;
        pick.iter()
            .map(|&i| {
                let raw = data[i * frame..(i + 1) * frame].to_vec();
                let img = if c == 1 {
                    GrayImage::from_raw(w as u32, h as u32, raw).map(DynamicImage::ImageLuma8)
                } else {
                    RgbImage::from_raw(w as u32, h as u32, raw).map(DynamicImage::ImageRgb8)
                };
                img.map(|im| preprocess(im, p)).ok_or_else(|| {
                    Error::data(path, "frame buffer has the wrong size", "re-save the clip")
                })
            })
            .collect::<Result<_>>()?
    };
    Ok(sheet(&frames, p))
}

/// Frames `[C,H,W]` side by side: `[C,H,T·W]`, and their display images likewise.
fn sheet(frames: &[Decoded], p: &Preprocess) -> Decoded {
    let [h, w] = p.size;
    let t = frames.len();
    let c = p.channels;
    let mut pixels = vec![0f32; c * h * t * w];
    let mut display = RgbImage::new((t * w) as u32, h as u32);
    for (k, f) in frames.iter().enumerate() {
        for ch in 0..c {
            for y in 0..h {
                let src = &f.pixels[(ch * h + y) * w..(ch * h + y + 1) * w];
                let dst = (ch * h + y) * t * w + k * w;
                pixels[dst..dst + w].copy_from_slice(src);
            }
        }
        image::imageops::replace(&mut display, &f.display, (k * w) as i64, 0);
    }
    Decoded { pixels, display }
}

/// A uint8 `.npy` file: (shape, values).
fn read_u8(path: &Path) -> Result<(Vec<u64>, Vec<u8>)> {
    let bad = |m: String| {
        Error::data(
            path,
            format!("cannot read the clip: {m}"),
            "save clips with numpy as uint8 [T,H,W,C] (np.save)",
        )
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| bad(e.to_string()))?;
    let shape = npy.shape().to_vec();
    let descr = npy.dtype().descr();
    if !descr.contains("u1") && !descr.contains("b1") {
        return Err(bad(format!(
            "dtype {descr} is not uint8 (pixel values 0..255)"
        )));
    }
    if npy.order() != npyz::Order::C {
        return Err(bad("array is in Fortran order".into()));
    }
    let data = npy.into_vec::<u8>().map_err(|e| bad(e.to_string()))?;
    Ok((shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(frames: usize, stride: usize) -> Preprocess {
        Preprocess {
            channels: 1,
            size: [2, 3],
            resize: None,
            filter: crate::config::Filter::Bilinear,
            mean: None,
            std: None,
            max_pixels: crate::config::DEFAULT_MAX_PIXELS,
            frames: Some(frames),
            frame_stride: stride,
        }
    }

    #[test]
    fn sampling_takes_the_centre_clip() {
        assert_eq!(sample(8, &pre(8, 1)), Some((0..8).collect()));
        assert_eq!(sample(10, &pre(4, 2)), Some(vec![1, 3, 5, 7]));
        assert_eq!(sample(6, &pre(4, 2)), None);
    }

    #[test]
    fn npy_clip_becomes_a_contact_sheet() {
        let dir = std::env::temp_dir().join(format!("xaudit-clip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.npy");
        // 5 frames of 2x3 pixels, frame k filled with 10k + column.
        let data: Vec<u8> = (0..5u8)
            .flat_map(|k| (0..6u8).map(move |i| 10 * k + i % 3))
            .collect();
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::<u8>::new()
            .default_dtype()
            .shape(&[5, 2, 3, 1])
            .writer(std::fs::File::create(&path).unwrap())
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
        let d = decode_clip(&path, &pre(2, 2)).unwrap();
        // Frames 1 and 3 (the centre of 5 with stride 2), side by side: rows of 6 values.
        let row: Vec<u8> = d.pixels[..6]
            .iter()
            .map(|v| (v * 255.0).round() as u8)
            .collect();
        assert_eq!(row, vec![10, 11, 12, 30, 31, 32]);
        assert_eq!((d.display.width(), d.display.height()), (6, 2));
        let e = decode_clip(&path, &pre(4, 2)).unwrap_err().to_string();
        assert!(e.contains("c.npy") && e.contains("5 frame"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
