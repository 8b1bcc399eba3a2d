//! Decoding one image file into the model's input layout (pure Rust `image` crate, not stb).
use crate::config::{Filter, Preprocess};
use crate::error::{Error, Result};
use image::imageops::FilterType;
use image::{DynamicImage, RgbImage};
use std::path::Path;

/// One preprocessed image, before mean/std normalisation.
#[derive(Debug)]
pub struct Decoded {
    /// C*H*W values in [0,1], channel-major.
    pub pixels: Vec<f32>,
    /// The resized and cropped image as the model sees it, for overlays.
    pub display: RgbImage,
}

fn filter_type(f: Filter) -> FilterType {
    match f {
        Filter::Nearest => FilterType::Nearest,
        Filter::Bilinear => FilterType::Triangle,
        Filter::Bicubic => FilterType::CatmullRom,
    }
}

/// Resize so the shorter side is `target` (keeping aspect), then centre-crop to `[h, w]`,
/// as torchvision's `Resize(target)` + `CenterCrop((h, w))`.
fn resize_crop(img: DynamicImage, p: &Preprocess) -> DynamicImage {
    let [h, w] = p.size;
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let img = if (iw, ih) == (w, h) && p.resize.is_none() {
        img
    } else {
        let target = p.resize.unwrap_or(h.max(w));
        let (nw, nh) = if iw <= ih {
            (
                target,
                ((ih as f64) * target as f64 / iw as f64).round() as usize,
            )
        } else {
            (
                ((iw as f64) * target as f64 / ih as f64).round() as usize,
                target,
            )
        };
        let (nw, nh) = (nw.max(w), nh.max(h));
        if (nw, nh) == (iw, ih) {
            img
        } else {
            img.resize_exact(nw as u32, nh as u32, filter_type(p.filter))
        }
    };
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    // torchvision rounds the crop offset: int(round((ih - h) / 2.0)).
    let top = ((ih - h) as f64 / 2.0).round() as u32;
    let left = ((iw - w) as f64 / 2.0).round() as u32;
    img.crop_imm(left, top, w as u32, h as u32)
}

/// Reads, decodes and preprocesses one image; errors name the file.
pub fn decode_file(path: &Path, p: &Preprocess) -> Result<Decoded> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::image(
            path,
            format!("cannot read: {e}"),
            "check the path and permissions",
        )
    })?;
    decode_bytes(&bytes, path, p)
}

/// Decodes an in-memory image; `path` is used only in messages.
pub fn decode_bytes(bytes: &[u8], path: &Path, p: &Preprocess) -> Result<Decoded> {
    if bytes.is_empty() {
        return Err(Error::image(
            path,
            "file is empty (0 bytes)",
            "replace it with a valid PNG or JPEG, or remove it from the data set",
        ));
    }
    let open = || {
        image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::image(path, format!("cannot read: {e}"), "check the file"))
    };
    // The header's declared size is checked before any pixel is allocated.
    if let Ok((w, h)) = open()?.into_dimensions() {
        let n = w as u64 * h as u64;
        if n > p.max_pixels {
            return Err(Error::image(
                path,
                format!("declares {w}x{h} = {n} pixels, above the limit of {} (possible decompression bomb)", p.max_pixels),
                "remove the file, or raise max-pixels in [preprocess] of xaudit.toml if the image is genuine",
            ));
        }
    }
    let mut reader = open()?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(p.max_pixels.saturating_mul(16));
    reader.limits(limits);
    let img = reader.decode().map_err(|e| {
        Error::image(
            path,
            format!("cannot decode: {e}"),
            "only PNG and JPEG are supported; re-encode or remove the file",
        )
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::image(path, "image has no pixels", "remove the file"));
    }
    Ok(preprocess(img, p))
}

/// Resize, centre crop and channel conversion of a decoded image (or video frame).
pub fn preprocess(img: DynamicImage, p: &Preprocess) -> Decoded {
    let img = resize_crop(img, p);
    let [h, w] = p.size;
    let mut pixels = vec![0f32; p.channels * h * w];
    // Alpha is dropped (composited on nothing), like PIL's convert("RGB").
    let display = img.to_rgb8();
    match p.channels {
        1 => {
            // ITU-R 601-2 luma in PIL's fixed point (convert("L")), so greyscale models see
            // what torchvision fed them; the image crate's own to_luma8 uses Rec. 709 weights.
            for (o, px) in pixels.iter_mut().zip(display.pixels()) {
                let [r, g, b] = px.0.map(u32::from);
                let l = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
                *o = l as f32 / 255.0;
            }
        }
        _ => {
            let raw = display.as_raw();
            let plane = h * w;
            for i in 0..plane {
                for c in 0..3 {
                    pixels[c * plane + i] = raw[i * 3 + c] as f32 / 255.0;
                }
            }
        }
    }
    Decoded { pixels, display }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(ch: usize, h: usize, w: usize) -> Preprocess {
        Preprocess {
            channels: ch,
            size: [h, w],
            resize: None,
            filter: Filter::Bilinear,
            mean: None,
            std: None,
            max_pixels: crate::config::DEFAULT_MAX_PIXELS,
            frames: None,
            frame_stride: 1,
        }
    }

    fn png(img: DynamicImage) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Png).unwrap();
        buf.into_inner()
    }

    #[test]
    fn grey_png_to_rgb_replicates() {
        let g = image::GrayImage::from_fn(4, 2, |x, y| image::Luma([(x * 10 + y) as u8]));
        let d = decode_bytes(
            &png(DynamicImage::ImageLuma8(g)),
            Path::new("g.png"),
            &pre(3, 2, 4),
        )
        .unwrap();
        assert_eq!(d.pixels.len(), 3 * 8);
        assert_eq!(d.pixels[1], 10.0 / 255.0);
        assert_eq!(d.pixels[8 + 1], 10.0 / 255.0);
        assert_eq!(d.pixels[16 + 5], 11.0 / 255.0);
    }

    #[test]
    fn rgba_drops_alpha_and_grey_uses_luma() {
        let c = image::RgbaImage::from_fn(2, 2, |_, _| image::Rgba([200, 100, 50, 7]));
        let bytes = png(DynamicImage::ImageRgba8(c));
        let rgb = decode_bytes(&bytes, Path::new("c.png"), &pre(3, 2, 2)).unwrap();
        assert_eq!(rgb.pixels[0] * 255.0, 200.0);
        assert_eq!(rgb.pixels[4] * 255.0, 100.0);
        assert_eq!(rgb.pixels[8] * 255.0, 50.0);
        let grey = decode_bytes(&bytes, Path::new("c.png"), &pre(1, 2, 2)).unwrap();
        // ITU-R 601-2 luma, as PIL: 0.299 R + 0.587 G + 0.114 B = 124.25 → 124.
        assert!(
            (grey.pixels[0] * 255.0 - 124.0).abs() <= 1.0,
            "{}",
            grey.pixels[0] * 255.0
        );
    }

    #[test]
    fn resize_shorter_side_then_crop() {
        let g = image::GrayImage::from_fn(40, 20, |x, _| image::Luma([(x * 6) as u8]));
        let mut p = pre(1, 8, 8);
        p.resize = Some(8);
        let d = decode_bytes(&png(DynamicImage::ImageLuma8(g)), Path::new("g.png"), &p).unwrap();
        assert_eq!(d.pixels.len(), 64);
        assert_eq!((d.display.width(), d.display.height()), (8, 8));
        // Resized to 16x8, the centre crop keeps columns 4..12, so values rise left to right.
        assert!(d.pixels[0] < d.pixels[7]);
    }

    #[test]
    fn crop_takes_centre() {
        // 6 wide, 4 high; crop 4x4 after resize to shorter side 4 (no-op) keeps columns 1..5.
        let g = image::GrayImage::from_fn(6, 4, |x, _| image::Luma([x as u8]));
        let mut p = pre(1, 4, 4);
        p.resize = Some(4);
        let d = decode_bytes(&png(DynamicImage::ImageLuma8(g)), Path::new("g.png"), &p).unwrap();
        assert_eq!(d.pixels[0] * 255.0, 1.0);
        assert_eq!(d.pixels[3] * 255.0, 4.0);
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let e = decode_bytes(b"not an image", Path::new("x/bad.png"), &pre(1, 2, 2)).unwrap_err();
        assert!(e.to_string().contains("x/bad.png"));
        let e = decode_bytes(b"", Path::new("x/empty.png"), &pre(1, 2, 2)).unwrap_err();
        assert!(e.to_string().contains("empty"));
    }
}
