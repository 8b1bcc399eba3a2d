//! `xaudit methods`: the attribution methods of the registry, their references, what they
//! need from the model, their cost, their reference defaults, and the keys a
//! `[methods.NAME]` table in xaudit.toml or a suite file (or `explain --param`) accepts.
use anyhow::Result;
use xaudit::attribution::{config, MethodKind, Needs};

pub fn needs_text(n: Needs) -> &'static str {
    match n {
        Needs::Nothing => "nothing (model-blind control)",
        Needs::Forward => "forward only (black-box)",
        Needs::Gradients => "input gradients",
        Needs::Features => "`features`/`head` (no gradients)",
        Needs::FeaturesAndGradients => "`features`/`head` and gradients through `head`",
    }
}

pub fn run() -> Result<()> {
    for k in MethodKind::ALL {
        let info = k.info();
        outln!("{:<22} {}", k.name(), info.summary);
        outln!("{:<22} reference: {}", "", info.reference);
        outln!(
            "{:<22} needs: {}; cost per image: {}",
            "",
            needs_text(info.needs),
            info.cost
        );
        let defaults: Vec<String> = config::defaults_of(*k)
            .into_iter()
            .map(|(key, v)| format!("{key} = {v}"))
            .collect();
        outln!("{:<22} [methods.{}] {}", "", k.name(), defaults.join(", "));
    }
    outln!(
        "\nSet these per method in xaudit.toml or a suite file (e.g. [methods.integrated-gradients] steps = 64), or for `xaudit explain` with --param KEY=VALUE; every audit explains with them and the report records them."
    );
    Ok(())
}
