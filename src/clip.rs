//! Video clips as contact sheets.
//!
//! A video model takes clips `[N,C,T,H,W]`. Everywhere else in xaudit a clip travels as its
//! contact sheet `[N,C,H,T·W]`: its T frames side by side, frame t in columns `t·W..(t+1)·W`.
//! Why: every per-pixel stage (gradients, noise, L∞ attacks, pixel deletion, maps, entropy,
//! map similarity, heatmaps) is then the same code for images and clips, and a map `[H,T·W]`
//! is already the contact sheet `explain` writes. What is not per-pixel knows the frames:
//! the model unpacks the sheet before `forward` ([`to_clip`]); spatial transforms act frame
//! by frame ([`per_frame`]); occlusion windows and RISE masks are spatio-temporal and never
//! straddle two frames; Grad-CAM upsamples its `[T',h,w]` grid trilinearly.
use tch::Tensor;

/// `[N,C,H,T·W]` sheet → `[N,C,T,H,W]` clip (a view; no copy).
pub fn to_clip(x: &Tensor, frames: i64) -> Tensor {
    let s = x.size();
    let (n, c, h, tw) = (s[0], s[1], s[2], s[3]);
    x.view([n, c, h, frames, tw / frames])
        .permute([0, 1, 3, 2, 4])
}

/// `[N,C,T,H,W]` clip → `[N,C,H,T·W]` sheet.
pub fn to_sheet(x: &Tensor) -> Tensor {
    let s = x.size();
    let (n, c, t, h, w) = (s[0], s[1], s[2], s[3], s[4]);
    x.permute([0, 1, 3, 2, 4]).reshape([n, c, h, t * w])
}

/// Applies `f` (a function of `[M,C,H,W]` images) to every frame of sheets `[N,C,H,T·W]`.
pub fn per_frame(x: &Tensor, frames: i64, f: impl FnOnce(&Tensor) -> Tensor) -> Tensor {
    let clip = to_clip(x, frames); // [N,C,T,H,W]
    let s = clip.size();
    let (n, c, t, h, w) = (s[0], s[1], s[2], s[3], s[4]);
    let flat = clip.permute([0, 2, 1, 3, 4]).reshape([n * t, c, h, w]);
    let out = f(&flat);
    let o = out.size();
    let back = out.view([n, t, o[1], o[2], o[3]]).permute([0, 2, 1, 3, 4]);
    to_sheet(&back)
}

/// Maps `[N,H,T·W]` → `[N,T,H,W]`.
pub fn map_frames(maps: &Tensor, frames: i64) -> Tensor {
    to_clip(&maps.unsqueeze(1), frames).squeeze_dim(1)
}

/// Share of each map's absolute mass in each frame, `[N,T]` (a map is `[N,H,T·W]`).
pub fn frame_mass(maps: &Tensor, frames: i64) -> Tensor {
    let per = map_frames(&maps.abs(), frames).sum_dim_intlist(
        [2i64, 3].as_slice(),
        false,
        tch::Kind::Double,
    );
    let total = per
        .sum_dim_intlist(1, true, tch::Kind::Double)
        .clamp_min(1e-300);
    per / total
}

/// Rolls clips (sheets `[N,C,H,T·W]`) by `shift` frames, wrapping around: frame t of the
/// result is frame `t - shift` of the input.
pub fn roll_frames(x: &Tensor, frames: i64, shift: i64) -> Tensor {
    to_sheet(&to_clip(x, frames).roll([shift].as_slice(), [2i64].as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn sheet_and_clip_round_trip_and_frames_sit_side_by_side() {
        let clip = Tensor::arange(2 * 3 * 4 * 5 * 6, (Kind::Float, tch::Device::Cpu))
            .view([2, 3, 4, 5, 6]);
        let sheet = to_sheet(&clip);
        assert_eq!(sheet.size(), vec![2, 3, 5, 24]);
        // Frame 2, row 1, column 4 of clip (1, channel 0) sits at column 2·6 + 4 of the sheet.
        assert_eq!(
            sheet.double_value(&[1, 0, 1, 16]),
            clip.double_value(&[1, 0, 2, 1, 4])
        );
        let back = to_clip(&sheet, 4);
        assert!(back.equal(&clip));
        let same = per_frame(&sheet, 4, |f| f.shallow_clone());
        assert!(same.equal(&sheet));
        let flipped = per_frame(&sheet, 4, |f| f.flip([3i64].as_slice()));
        assert_eq!(
            flipped.double_value(&[0, 0, 0, 6]),
            clip.double_value(&[0, 0, 1, 0, 5])
        );
        let rolled = roll_frames(&sheet, 4, 1);
        assert!(to_clip(&rolled, 4).select(2, 1).equal(&clip.select(2, 0)));
    }

    #[test]
    fn frame_mass_sums_to_one() {
        let m = Tensor::zeros([1, 2, 6], (Kind::Float, tch::Device::Cpu));
        let _ = m.narrow(2, 3, 3).fill_(1.0);
        let share = Vec::<f64>::try_from(frame_mass(&m, 2).view([-1])).unwrap();
        assert_eq!(share, vec![0.0, 1.0]);
    }
}
