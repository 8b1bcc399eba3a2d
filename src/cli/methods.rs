//! `xaudit methods`: the attribution methods and their reference defaults.
use anyhow::Result;
use xaudit::attribution::{MethodKind, MethodSpec};

pub fn run() -> Result<()> {
    for k in MethodKind::ALL {
        let params = serde_json::to_string(&MethodSpec::with_defaults(k))?;
        outln!("{:<22} {}", k.name(), k.summary());
        outln!(
            "{:<22} score={:?} aggregate={:?} params={params}",
            "",
            k.default_score(),
            k.default_aggregate()
        );
    }
    Ok(())
}
