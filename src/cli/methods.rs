//! `xaudit methods`: the attribution methods, their reference defaults, and the keys a
//! `[methods.NAME]` table in xaudit.toml or a suite file accepts.
use anyhow::Result;
use xaudit::attribution::{config, MethodKind};

pub fn run() -> Result<()> {
    for k in MethodKind::ALL {
        outln!("{:<22} {}", k.name(), k.summary());
        let defaults: Vec<String> = config::defaults_of(k)
            .into_iter()
            .map(|(key, v)| format!("{key} = {v}"))
            .collect();
        outln!("{:<22} [methods.{}] {}", "", k.name(), defaults.join(", "));
    }
    outln!(
        "\nSet these per method in xaudit.toml or a suite file (e.g. [methods.integrated-gradients] steps = 64); every audit explains with them and the report records them."
    );
    Ok(())
}
