//! `xaudit docs CODE|NAME`: an audit's documentation and parameters, or a method's entry.
use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct DocsArgs {
    /// Audit code (XA002) or name (attack-top-k), or a method name (grad-cam-plus-plus).
    pub audit: String,
}

pub fn run(a: DocsArgs) -> Result<()> {
    if let Some(k) = xaudit::attribution::MethodKind::ALL
        .iter()
        .find(|k| k.name().eq_ignore_ascii_case(&a.audit))
    {
        let info = k.info();
        outln!("# {} (attribution method)\n", info.name);
        outln!("## What it computes\n{}\n", info.summary);
        outln!(
            "## What it needs\n{}; explains the {} by default, channels reduced by {}\n",
            super::methods::needs_text(info.needs),
            xaudit::audit::run::score_name(info.score),
            serde_json::to_value(info.aggregate)?
                .as_str()
                .unwrap_or("?")
        );
        outln!(
            "## Cost per image\n{}{}\n",
            info.cost,
            if info.stochastic {
                " (a Monte Carlo estimate: audits report its own noise floor)"
            } else {
                ""
            }
        );
        outln!("## Parameters (defaults; set them in a [methods.{}] table or with `explain --param KEY=VALUE`)", info.name);
        for (key, v) in xaudit::attribution::config::defaults_of(*k) {
            outln!("  {key} = {v}");
        }
        outln!("\n## References\n{}", info.reference);
        return Ok(());
    }
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
