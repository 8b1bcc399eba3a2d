//! `--device auto|cpu|cuda[:N]`.
use crate::error::{Error, Result};
use tch::Device;

/// Parses a device spec; `auto` picks CUDA device 0 when libtorch sees one.
pub fn parse_device(spec: &str) -> Result<Device> {
    let s = spec.trim().to_ascii_lowercase();
    match s.as_str() {
        "auto" => Ok(if tch::Cuda::is_available() {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => cuda(0, spec),
        _ => {
            if let Some(n) = s.strip_prefix("cuda:") {
                let n: usize = n.parse().map_err(|_| {
                    Error::config(
                        "--device",
                        format!("`{spec}` is not a device"),
                        "use auto, cpu, cuda or cuda:N",
                    )
                })?;
                cuda(n, spec)
            } else {
                Err(Error::config(
                    "--device",
                    format!("`{spec}` is not a device"),
                    "use auto, cpu, cuda or cuda:N",
                ))
            }
        }
    }
}

fn cuda(n: usize, spec: &str) -> Result<Device> {
    let count = tch::Cuda::device_count() as usize;
    if !tch::Cuda::is_available() || n >= count {
        return Err(Error::config(
            "--device",
            format!("`{spec}` requested but libtorch sees {count} CUDA device(s)"),
            "use --device cpu, or run on a machine with an NVIDIA driver for CUDA 13 (`xaudit doctor` shows what is visible)",
        ));
    }
    Ok(Device::Cuda(n))
}

/// Human-readable device name for reports.
pub fn describe(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}
