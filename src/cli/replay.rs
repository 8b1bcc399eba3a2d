//! `xaudit replay report.json [--case N]`: re-runs one fuzz counterexample exactly.
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use xaudit::attribution::{aggregate, Ctx, Method};
use xaudit::audit::fuzz::{aligned_similarity, perturbed, Counterexample};
use xaudit::data::Dataset;
use xaudit::model::Model;

#[derive(Args)]
pub struct ReplayArgs {
    /// A report.json written by `xaudit check` with the fuzz audit.
    pub report: PathBuf,
    /// Which counterexample (in report order, from 0).
    #[arg(long, default_value_t = 0)]
    pub case: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// Every counterexample recorded in a report, in order.
pub fn counterexamples(r: &xaudit::report::Report) -> Vec<Counterexample> {
    r.audits
        .iter()
        .filter_map(|a| a.summary.get("counterexamples"))
        .filter_map(|v| serde_json::from_value::<Vec<Counterexample>>(v.clone()).ok())
        .flatten()
        .collect()
}

pub fn run(a: ReplayArgs) -> Result<i32> {
    let r = xaudit::report::read(&a.report)?;
    let all = counterexamples(&r);
    let ce = all.get(a.case).with_context(|| {
        format!(
            "{} holds {} counterexample(s); --case {} does not exist (run `xaudit check MODEL --suite fuzz --out-dir DIR` to find some)",
            a.report.display(),
            all.len(),
            a.case
        )
    })?;
    let device = xaudit::device::parse_device(&a.device)?;
    let pre = &ce.preprocess;
    let shape = pre.input_shape();
    let model = Model::load(std::path::Path::new(&r.model.path), device, shape)?;
    let data = Dataset::from_inputs(&[PathBuf::from(&ce.path)])?;
    let b = data.load_batch(0..1, pre, device)?;
    let method = match &ce.method_config {
        Some(m) => m.clone(),
        None => Method::defaults(xaudit::attribution::config::method_kind(
            &ce.method,
            "counterexample",
        )?),
    };
    let ctx = Ctx {
        model: &model,
        seed: ce.seed,
        internal_batch: 256,
        score: method.score,
    };
    let agg = method.aggregate;
    let target = tch::Tensor::from_slice(&[ce.predicted]).to_device(device);
    let clean = aggregate(
        &method
            .attribute(&ctx, &b.x, &target, &[ce.index as u64])?
            .maps,
        agg,
    )
    .abs();
    let xp = perturbed(pre, &b.x.get(0), &ce.program).unsqueeze(0);
    let pred: i64 = model.logits(&xp)?.argmax(-1, false).int64_value(&[0]);
    let pert = aggregate(
        &method.attribute(&ctx, &xp, &target, &[ce.eval_id])?.maps,
        agg,
    )
    .abs();
    let v = |t: &tch::Tensor| {
        Vec::<f32>::try_from(t.flatten(0, -1).to_device(tch::Device::Cpu)).unwrap_or_default()
    };
    let (c, p) = (v(&clean), v(&pert));
    let (h, w) = (pre.size[0], pre.size[1]);
    let sim = aligned_similarity(&ce.similarity_metric, &c, h, w, &ce.program, &p);
    let violated = pred == ce.predicted && sim < ce.min_similarity;
    outln!(
        "counterexample {} of {}: {} ({})",
        a.case,
        all.len(),
        ce.path,
        ce.method
    );
    outln!("program: {}", ce.description);
    outln!(
        "prediction {} (recorded {}), {} similarity {:.6} (recorded {:.6}, property: >= {})",
        pred,
        ce.predicted,
        ce.similarity_metric,
        sim,
        ce.similarity,
        ce.min_similarity
    );
    outln!(
        "{}",
        if violated {
            "violation reproduced (exit 1)"
        } else {
            "violation NOT reproduced (exit 0)"
        }
    );
    Ok(if violated { 1 } else { 0 })
}
