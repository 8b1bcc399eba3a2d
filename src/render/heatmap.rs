//! PNG heatmaps: the map in a perceptual colour map, blended over the image the model saw.
use crate::error::{Error, Result};
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::{imageops::FilterType, Rgb, RgbImage};
use std::path::Path;

/// Blends `map` (`h*w`, any range) over `img` and writes a PNG at least `min_side` pixels
/// on its shorter side (small model inputs are enlarged, nearest-neighbour for the image so
/// pixels stay honest, bilinear for the map). Signed maps use a diverging colour map
/// centred on 0; non-negative maps use min-max scaling with `turbo`.
pub fn write_overlay(path: &Path, img: &RgbImage, map: &[f32], min_side: u32) -> Result<()> {
    write_png(path, &overlay(img, map, min_side))
}

/// A clip's overlay: its contact sheet (frames side by side) with a white line between
/// frames, so the strip reads as `frames` pictures.
pub fn write_frames(
    path: &Path,
    img: &RgbImage,
    map: &[f32],
    min_side: u32,
    frames: u32,
) -> Result<()> {
    let mut out = overlay(img, map, min_side);
    let (w, h) = out.dimensions();
    for k in 1..frames.max(1) {
        let x = k * w / frames;
        for y in 0..h {
            out.put_pixel(x.min(w - 1), y, Rgb([255, 255, 255]));
        }
    }
    write_png(path, &out)
}

/// Two overlays side by side with a white gutter (an image and its second view).
pub fn write_pair(
    path: &Path,
    a: (&RgbImage, &[f32]),
    b: (&RgbImage, &[f32]),
    min_side: u32,
) -> Result<()> {
    let (l, r) = (overlay(a.0, a.1, min_side), overlay(b.0, b.1, min_side));
    let gap = (l.width() / 16).max(4);
    let (w, h) = (l.width() + gap + r.width(), l.height().max(r.height()));
    let mut out = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    image::imageops::replace(&mut out, &l, 0, 0);
    image::imageops::replace(&mut out, &r, (l.width() + gap) as i64, 0);
    write_png(path, &out)
}

/// `[C,H,W]` pixels in [0,1] (1 or 3 channels) as an RGB picture.
pub fn rgb(x01: &tch::Tensor) -> RgbImage {
    let s = x01.size();
    let (c, h, w) = (s[0] as usize, s[1] as u32, s[2] as u32);
    let v: Vec<f32> =
        Vec::try_from(x01.to_kind(tch::Kind::Float).flatten(0, -1)).unwrap_or_default();
    let n = (h * w) as usize;
    RgbImage::from_fn(w, h, |x, y| {
        let i = (y * w + x) as usize;
        let ch = |k: usize| {
            let k = if c >= 3 { k } else { 0 };
            (v.get(k * n + i).copied().unwrap_or(0.0) * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8
        };
        Rgb([ch(0), ch(1), ch(2)])
    })
}

fn overlay(img: &RgbImage, map: &[f32], min_side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let colours = colourise(map);
    let heat = RgbImage::from_fn(w, h, |x, y| {
        let c = colours[(y * w + x) as usize];
        Rgb([c.r, c.g, c.b])
    });
    let scale = min_side.div_ceil(w.min(h).max(1)).max(1);
    let (ow, oh) = (w * scale, h * scale);
    let base = image::imageops::resize(img, ow, oh, FilterType::Nearest);
    let heat = image::imageops::resize(&heat, ow, oh, FilterType::Triangle);
    RgbImage::from_fn(ow, oh, |x, y| {
        let b = base.get_pixel(x, y).0;
        // Grey base so the colour map is read only from the explanation.
        let g = 0.299 * b[0] as f32 + 0.587 * b[1] as f32 + 0.114 * b[2] as f32;
        let hc = heat.get_pixel(x, y).0;
        let mix = |c: u8| (0.45 * g + 0.55 * c as f32).round().clamp(0.0, 255.0) as u8;
        Rgb([mix(hc[0]), mix(hc[1]), mix(hc[2])])
    })
}

fn write_png(path: &Path, out: &RgbImage) -> Result<()> {
    // Fast compression: noisy maps (random control, raw gradients) compress poorly and the
    // default level made PNG encoding dominate `explain` for cheap methods.
    let file = std::fs::File::create(path).map_err(|e| Error::output(path, e.to_string()))?;
    let enc = PngEncoder::new_with_quality(
        std::io::BufWriter::new(file),
        CompressionType::Fast,
        PngFilter::Adaptive,
    );
    out.write_with_encoder(enc)
        .map_err(|e| Error::output(path, e.to_string()))
}

pub(crate) fn colourise(map: &[f32]) -> Vec<colorous::Color> {
    let finite = map.iter().copied().filter(|v| v.is_finite());
    let (mn, mx) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if mn < 0.0 {
        let m = mn.abs().max(mx.abs()).max(f32::MIN_POSITIVE);
        map.iter()
            .map(|v| {
                colorous::RED_BLUE
                    .eval_continuous(1.0 - ((v / m) as f64 * 0.5 + 0.5).clamp(0.0, 1.0))
            })
            .collect()
    } else {
        let r = (mx - mn).max(f32::MIN_POSITIVE);
        map.iter()
            .map(|v| colorous::TURBO.eval_continuous((((v - mn) / r) as f64).clamp(0.0, 1.0)))
            .collect()
    }
}
