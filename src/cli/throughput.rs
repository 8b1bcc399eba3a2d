//! `xaudit throughput MODEL`: how fast the model itself runs here, per batch size.
use super::CommonArgs;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct ThroughputArgs {
    /// TorchScript model.
    pub model: PathBuf,
    /// Batch sizes to try.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,4,8,16,32,64,128,256,512"
    )]
    pub batch_sizes: Vec<usize>,
    /// Seconds of timed passes per batch size and direction (after one warm-up pass).
    #[arg(long, default_value_t = 1.0)]
    pub min_time: f64,
    /// Timings per batch size and direction; the best is kept.
    #[arg(long, default_value_t = 1)]
    pub repeats: usize,
    /// Images to run on (folder, CSV or files; up to the largest batch size are decoded and
    /// repeated as needed). Default: seeded N(0,1) inputs of the model's input shape.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(a: ThroughputArgs) -> Result<()> {
    anyhow::ensure!(
        a.min_time > 0.0 && a.min_time.is_finite(),
        "--min-time must be a positive number of seconds"
    );
    anyhow::ensure!(
        a.batch_sizes.iter().all(|&b| b >= 1),
        "--batch-sizes must all be at least 1"
    );
    let (cfg, pre) = a.common.resolve()?;
    let device = xaudit::device::parse_device(&a.common.device)?;
    let shape = pre.input_shape();
    let m = xaudit::embedding::load(&a.model, device, shape, &cfg, &pre, None)?;
    let images = match &a.data {
        Some(p) => {
            let d = xaudit::data::Dataset::open(std::slice::from_ref(p), &pre)?;
            let n = d
                .len()
                .min(a.batch_sizes.iter().copied().max().unwrap_or(1));
            anyhow::ensure!(n >= 1, "{}: no images found", p.display());
            Some(d.load_batch(0..n, &pre, device)?.x)
        }
        None => None,
    };
    let points =
        xaudit::throughput::measure(&m, images.as_ref(), &a.batch_sizes, a.min_time, a.repeats)?;
    let (f, b) = xaudit::throughput::ceiling(&points);
    if a.json {
        let v = serde_json::json!({
            "model": a.model.display().to_string(),
            "device": xaudit::device::describe(device),
            "threads": tch::get_num_threads(),
            "input_shape": shape,
            "inputs": a.data.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "seeded N(0,1)".into()),
            "repeats": a.repeats,
            "min_time_s": a.min_time,
            "points": points,
            "ceiling_forward_per_s": f,
            "ceiling_backward_per_s": b,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    outln!(
        "{} on {}, {} intra-op threads, input {:?}",
        a.model.display(),
        xaudit::device::describe(device),
        tch::get_num_threads(),
        shape
    );
    outln!(
        "{:>6} {:>14} {:>20}",
        "batch",
        "forward img/s",
        "forward+backward img/s"
    );
    for p in &points {
        outln!(
            "{:>6} {:>14.1} {:>20.1}",
            p.batch,
            p.forward_per_s,
            p.backward_per_s
        );
    }
    outln!("ceiling: forward {f:.1} img/s, forward+backward {b:.1} img/s");
    Ok(())
}
