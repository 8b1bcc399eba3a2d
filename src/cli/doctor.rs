//! `xaudit doctor [MODEL]`: is this installation usable, and does the model meet the contract?
use super::CommonArgs;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use xaudit::model::{CamSupport, Model};

#[derive(Args)]
pub struct DoctorArgs {
    /// Optional model to check against the contract.
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(a: DoctorArgs) -> Result<()> {
    let (_cfg, pre) = a.common.resolve()?;
    outln!("xaudit {}", env!("CARGO_PKG_VERSION"));
    outln!(
        "libtorch {} ({})",
        env!("XAUDIT_LIBTORCH_VERSION"),
        env!("XAUDIT_LIBTORCH_LIB")
    );
    let cuda = tch::Cuda::is_available();
    let n = tch::Cuda::device_count();
    outln!(
        "cuda: {} ({} device(s){})",
        if cuda { "available" } else { "not available" },
        n,
        if libtorch_cuda_loaded() {
            "; libtorch_cuda.so loaded"
        } else {
            "; libtorch_cuda.so NOT loaded: rebuild with the project's build.rs"
        }
    );
    outln!(
        "cudnn: {}",
        if tch::Cuda::cudnn_is_available() {
            "available"
        } else {
            "not available"
        }
    );
    outln!(
        "threads: intra-op {}, inter-op {}, rayon {}",
        tch::get_num_threads(),
        tch::get_num_interop_threads(),
        rayon::current_num_threads()
    );
    let device = xaudit::device::parse_device(&a.common.device)?;
    outln!("device: {}", xaudit::device::describe(device));
    if let Some(path) = a.model {
        let shape = [pre.channels as i64, pre.size[0] as i64, pre.size[1] as i64];
        let m = Model::load(&path, device, shape)?;
        outln!("model: {}", path.display());
        outln!("  input [C,H,W]: {shape:?} (from preprocessing)");
        outln!("  classes: {}", m.num_classes);
        outln!(
            "  parameters: {} in {} tensors",
            m.num_parameters,
            m.num_parameter_tensors
        );
        match &m.cam {
            CamSupport::Available { feature_shape } => {
                outln!("  features/head: ok, features {feature_shape:?}; CAM methods available")
            }
            CamSupport::Unavailable(why) => {
                outln!("  features/head: {why}; CAM methods unavailable")
            }
        }
        outln!("  contract: ok");
    }
    Ok(())
}

/// Whether libtorch_cuda.so is mapped into this process (the `--no-as-needed` link worked).
fn libtorch_cuda_loaded() -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.contains("libtorch_cuda.so"))
        .unwrap_or(false)
}
