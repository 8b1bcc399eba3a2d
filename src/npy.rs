//! `.npy` files (numpy format, float32, C order), written through the `npyz` crate.
use crate::error::{Error, Result};
use npyz::WriterBuilder;
use std::path::Path;

/// Writes `data` with `shape` as a little-endian float32 `.npy` file.
pub fn write_f32(path: &Path, shape: &[u64], data: &[f32]) -> Result<()> {
    let err = |e: std::io::Error| Error::output(path, e.to_string());
    let file = std::fs::File::create(path).map_err(err)?;
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .map_err(err)?;
    w.extend(data.iter().copied()).map_err(err)?;
    w.finish().map_err(err)
}

/// Reads a float32 or float64 `.npy` file into (shape, values as f32).
pub fn read_f32(path: &Path) -> Result<(Vec<u64>, Vec<f32>)> {
    let bad = |m: String| Error::data(path, m, "give a float32/float64 .npy file");
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| bad(e.to_string()))?;
    let shape = npy.shape().to_vec();
    let descr = npy.dtype().descr();
    let data = if descr.contains("f8") {
        npy.into_vec::<f64>()
            .map_err(|e| bad(e.to_string()))?
            .into_iter()
            .map(|v| v as f32)
            .collect()
    } else {
        npy.into_vec::<f32>().map_err(|e| bad(e.to_string()))?
    };
    Ok((shape, data))
}

/// Reads an int64 `.npy` file.
pub fn read_i64(path: &Path) -> Result<(Vec<u64>, Vec<i64>)> {
    let bad = |m: String| Error::data(path, m, "give an int64 .npy file");
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| bad(e.to_string()))?;
    let shape = npy.shape().to_vec();
    Ok((
        shape,
        npy.into_vec::<i64>().map_err(|e| bad(e.to_string()))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let dir = std::env::temp_dir().join(format!("xaudit-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.npy");
        write_f32(&p, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5]).unwrap();
        let (s, d) = read_f32(&p).unwrap();
        assert_eq!(s, vec![2, 3]);
        assert_eq!(d[5], 6.5);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
