//! Small pictures for reports: images and maps as PNG data URIs (self-contained HTML).
use crate::audit::{Panel, PanelKind};
use base64::Engine;
use image::{Rgb, RgbImage};

/// PNG bytes of a panel: images as they are (grey or RGB), maps in the perceptual colour map
/// (turbo for non-negative maps, diverging red-blue centred on 0 for signed ones).
pub fn png(p: &Panel) -> Vec<u8> {
    let (w, h) = (p.w as u32, p.h as u32);
    let n = p.h * p.w;
    let img = match p.kind {
        PanelKind::Image => RgbImage::from_fn(w, h, |x, y| {
            let i = (y * w + x) as usize;
            let ch = |c: usize| {
                let k = if p.c >= 3 { c } else { 0 };
                (p.data.get(k * n + i).copied().unwrap_or(0.0) * 255.0)
                    .round()
                    .clamp(0.0, 255.0) as u8
            };
            Rgb([ch(0), ch(1), ch(2)])
        }),
        PanelKind::Map => {
            let colours = super::heatmap::colourise(&p.data);
            RgbImage::from_fn(w, h, |x, y| {
                let c = colours[(y * w + x) as usize];
                Rgb([c.r, c.g, c.b])
            })
        }
    };
    let mut out = Vec::new();
    let _ = img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png);
    out
}

/// `data:image/png;base64,...` for a panel.
pub fn data_uri(p: &Panel) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png(p))
    )
}
