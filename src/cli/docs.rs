//! `xaudit docs CODE|NAME`: an audit's documentation and parameters.
use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct DocsArgs {
    /// Audit code (XA002) or name (attack-top-k).
    pub audit: String,
}

pub fn run(a: DocsArgs) -> Result<()> {
    let e = xaudit::audit::lookup(&a.audit, "xaudit docs")?;
    outln!("{}", e.doc.render());
    let params = (e.default_params)();
    outln!("## Parameters (defaults; set them under [[audit]] params in a suite or [audits.{}] params in xaudit.toml)", e.doc.name);
    if params.is_empty() {
        outln!("  (none)");
    }
    for (k, v) in &params {
        outln!("  {k} = {v}");
    }
    outln!(
        "\n## How verdicts are decided\n{}",
        xaudit::gate::decision_rule(&xaudit::gate::Settings::default())
    );
    outln!("Suites may set per audit `quantile` (e.g. 0.9: at least 90% of images on the good side), `test = \"wilcoxon\"` (a pseudo-median claim), `advisory = true` (reported, not gating) and `prerequisite = true` (must PASS).");
    Ok(())
}
