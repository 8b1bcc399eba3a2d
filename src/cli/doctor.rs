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
    /// A smooth surrogate of MODEL (for the attacks): checks it and how closely it agrees.
    #[arg(long, value_name = "FILE")]
    pub surrogate: Option<PathBuf>,
    /// Images to compare model and surrogate on (default: 64 seeded noise inputs).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(a: DoctorArgs) -> Result<()> {
    let (cfg, pre) = a.common.resolve()?;
    outln!("xaudit {}", env!("CARGO_PKG_VERSION"));
    outln!(
        "libtorch {} ({})",
        loaded_libtorch()
            .and_then(|d| torch_version(&d))
            .unwrap_or_else(|| env!("XAUDIT_LIBTORCH_VERSION").to_string()),
        loaded_libtorch()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| env!("XAUDIT_LIBTORCH_LIB").to_string())
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
        let shape = pre.input_shape();
        // View references are built from images: --data's, when given.
        let mut view_data = None;
        if xaudit::embedding::uses_pairs(&cfg) {
            if let Some(d) = &a.data {
                let mut ds = xaudit::data::Dataset::open(std::slice::from_ref(d), &pre)?;
                ds.items.truncate(256);
                xaudit::embedding::label_by_position(&mut ds);
                view_data = Some(ds);
            }
        }
        let root = a.data.clone().unwrap_or_default();
        let run_images = view_data.as_ref().map(|data| xaudit::embedding::RunImages {
            data,
            root: &root,
            seed: 0,
        });
        let m = if xaudit::embedding::uses_pairs(&cfg) && run_images.is_none() {
            Model::load(&path, device, shape)?
        } else {
            xaudit::embedding::load(&path, device, shape, &cfg, &pre, run_images.as_ref())?
        };
        outln!("model: {}", path.display());
        match m.clip {
            Some(c) => {
                let [ch, h, tw] = shape;
                outln!(
                    "  input [N,C,T,H,W]: [N, {ch}, {}, {h}, {}] clips (from preprocessing: frames = {}, frame-stride = {}); xaudit handles each clip as its contact sheet [C,H,T*W] = {shape:?}",
                    c.frames,
                    tw / c.frames,
                    c.frames,
                    pre.frame_stride
                );
            }
            None => outln!("  input [C,H,W]: {shape:?} (from preprocessing)"),
        }
        use xaudit::embedding::Reference;
        match &m.embedding {
            None if xaudit::embedding::uses_pairs(&cfg) => {
                outln!(
                    "  kind: embedding, {}-dimensional embeddings",
                    m.num_classes
                );
                let what = match cfg.embedding.reference {
                    Reference::Image => "partner images",
                    _ => "second augmented views",
                };
                outln!("  targets: {what}: in use, built from the images of `explain` and `check` (give --data to build them here)");
                outln!("  targets: class prototypes: available with [embedding] reference = \"prototypes\" and prototypes = DIR (a labelled support folder)");
            }
            None if m.clip.is_some() => {
                outln!("  kind: video classifier, forward(x [N,C,T,H,W]) -> [N,K] logits\n  classes: {}", m.num_classes);
                let ok: Vec<&str> = xaudit::attribution::MethodKind::ALL
                    .iter()
                    .filter(|k| k.info().clips)
                    .map(|k| k.info().name)
                    .collect();
                outln!("  methods for clips: {}", ok.join(", "));
            }
            None => outln!("  kind: classifier\n  classes: {}", m.num_classes),
            Some(r) => {
                outln!("  kind: embedding, {}-dimensional embeddings", r.dim);
                let pairs = if r.reference.pairs() {
                    ", pairwise-occlusion, averaged-transforms".to_string()
                } else {
                    "; pairwise-occlusion and averaged-transforms perturb the partner's pixels and need reference = \"view\" or \"image\"".to_string()
                };
                outln!("  methods for embeddings (Sammani et al. 2022): interaction-cam (needs features/head), context-agnostic-occlusion, pixel-invariance{pairs}; every other method explains the similarity score");
                match r.reference {
                    Reference::Prototypes => {
                        outln!(
                            "  targets: class prototypes: in use, {}; every method and audit explains the cosine similarity to a prototype (a nearest-prototype classifier)",
                            r.describe()
                        );
                        outln!("  targets: second augmented views: available with [embedding] reference = \"view\" (each image against its own seeded view)");
                        outln!("  targets: partner images: available with [embedding] reference = \"image\" and images = FILE-or-DIR (each image against its partner)");
                    }
                    Reference::View | Reference::Image => {
                        let (what, own) = match r.reference {
                            Reference::View => ("second augmented views", "view"),
                            _ => ("partner images", "partner"),
                        };
                        outln!(
                            "  targets: {what}: in use, {}; top-1 retrieval of the own {own} {}",
                            r.describe(),
                            view_retrieval(&m, view_data.as_ref(), &pre)?
                        );
                        outln!("  targets: class prototypes: available with [embedding] reference = \"prototypes\" and prototypes = DIR (a labelled support folder)");
                    }
                }
            }
        }
        outln!(
            "  parameters: {} in {} tensors",
            m.num_parameters,
            m.num_parameter_tensors
        );
        match &m.cam {
            CamSupport::Available { feature_shape } if m.clip.is_some() => outln!(
                "  features/head: ok, features [C',T',h,w] = {feature_shape:?}; grad-cam and grad-cam-plus-plus available (3D: weights averaged over space and time)"
            ),
            CamSupport::Available { feature_shape } => {
                outln!("  features/head: ok, features {feature_shape:?}; CAM methods available")
            }
            CamSupport::Unavailable(why) => {
                outln!("  features/head: {why}; CAM methods unavailable")
            }
        }
        outln!("  contract: ok");
        fn ctx(m: &Model) -> xaudit::attribution::Ctx<'_> {
            xaudit::attribution::Ctx {
                model: m,
                seed: 0,
                internal_batch: 8,
                score: xaudit::attribution::Score::Logit,
            }
        }
        let probe = xaudit::model::probe_input(shape, 2, device);
        let targets = m.logits(&probe)?.argmax(-1, false);
        let sal = xaudit::attribution::MethodSpec::with_defaults(
            xaudit::attribution::MethodKind::Saliency,
        );
        let exact =
            xaudit::attribution::second_order::probe(&sal, &ctx(&m), &probe, &targets, &[0, 1])?;
        outln!(
            "  exact attack gradients (second order, saliency): {}",
            if exact {
                "available (the model is twice differentiable)"
            } else {
                "not available (piecewise linear, e.g. ReLU): give the attacks a smooth surrogate with --surrogate, or they use the zeroth-order estimator"
            }
        );
        if let Some(sp) = a.surrogate.as_ref().or(cfg.model.surrogate.as_ref()) {
            let s = xaudit::embedding::load_like(&m, sp, shape)?;
            let x = match &a.data {
                Some(d) => {
                    let ds = xaudit::data::Dataset::open(std::slice::from_ref(d), &pre)?;
                    let n = ds.len().min(256);
                    ds.load_batch(0..n, &pre, device)?.x
                }
                None => xaudit::model::probe_input(shape, 64, device),
            };
            let ag = xaudit::model::agreement(&m, &s, &x)?;
            let exact_s = xaudit::attribution::second_order::probe(
                &sal,
                &ctx(&s),
                &probe,
                &targets,
                &[0, 1],
            )?;
            outln!("surrogate: {}", sp.display());
            outln!(
                "  agreement on {} {}: top-1 {:.1}%, largest probability difference {:.4}, largest logit difference {:.4}",
                ag.inputs,
                if a.data.is_some() { "images" } else { "seeded noise inputs" },
                100.0 * ag.top1,
                ag.max_probability_difference,
                ag.max_logit_difference
            );
            outln!(
                "  second-order gradients: {}",
                if exact_s {
                    "available"
                } else {
                    "NOT available: the surrogate is not smooth (replace ReLU by softplus)"
                }
            );
            if ag.top1 < 0.99 {
                outln!("  warning: the surrogate disagrees with the model on {:.1}% of inputs; attack directions taken through it may not transfer (check it is the same network with softplus in place of ReLU)", 100.0 * (1.0 - ag.top1));
            }
        }
    }
    Ok(())
}

/// Share of images whose nearest view is their own, as a percentage string.
fn view_retrieval(
    m: &Model,
    data: Option<&xaudit::data::Dataset>,
    pre: &xaudit::config::Preprocess,
) -> Result<String> {
    let Some(ds) = data else {
        return Ok(String::new());
    };
    let mut hits = 0;
    for r in ds.batch_ranges(64) {
        let b = ds.load_batch(r.clone(), pre, m.device)?;
        let (pred, _) = m.decide(&m.logits(&b.x)?, "the images")?;
        hits += pred.iter().zip(r).filter(|(p, i)| **p == *i as i64).count();
    }
    Ok(xaudit::fmt::percent(hits as f64 / ds.len().max(1) as f64))
}

/// The folder of the libtorch this process loaded (a pip-installed xaudit uses the torch of
/// its own environment, not the one it was built against).
fn loaded_libtorch() -> Option<std::path::PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| std::path::Path::new(p).parent().map(|d| d.to_path_buf()))
}

/// torch's version beside its lib folder (torch/version.py).
fn torch_version(lib: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(lib.parent()?.join("version.py")).ok()?;
    text.lines()
        .find(|l| l.starts_with("__version__"))
        .and_then(|l| l.split('\'').nth(1).map(str::to_string))
}

/// Whether libtorch_cuda.so is mapped into this process (the `--no-as-needed` link worked).
fn libtorch_cuda_loaded() -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.contains("libtorch_cuda.so"))
        .unwrap_or(false)
}
