//! Embedding models (docs/model-contract.md, "Embedding models"): the SimCLR digits encoder
//! of fixtures/build_simclr.py, scored by the cosine similarity of its embeddings to one
//! prototype per class of fixtures/data/digits_support. Known answers: the scores are the
//! cosines computed here by hand, the nearest-prototype accuracy is the one the Python
//! build measured, explanations of the similarity sit on the digit's strokes and are
//! faithful to it, and the model-blind controls fail the suites.
mod common;
use common::{digits_pre, fixture, output_text, xaudit};
use serde_json::Value;
use tch::{Device, Kind, Tensor};
use xaudit::attribution::{Ctx, MethodKind, MethodSpec, Score};
use xaudit::config::Config;
use xaudit::data::Dataset;
use xaudit::model::Model;

fn config(text: &str) -> Config {
    Config::parse(text, "test.toml").unwrap()
}

fn simclr_config() -> Config {
    config(&std::fs::read_to_string(fixture("simclr.toml")).unwrap())
}

fn simclr_with(cfg: &Config) -> xaudit::Result<Model> {
    xaudit::embedding::load(
        &fixture("models/digits_simclr.pt"),
        Device::Cpu,
        [1, 28, 28],
        cfg,
        &digits_pre(),
        None,
    )
}

fn simclr() -> Model {
    simclr_with(&simclr_config()).unwrap()
}

fn unit(e: &Tensor) -> Tensor {
    e / e.norm_scalaropt_dim(2, [1].as_slice(), true)
}

fn test_images(step: usize) -> (Tensor, Vec<i64>, Tensor) {
    let mut d = Dataset::from_inputs(&[fixture("data/digits/test")]).unwrap();
    d.items = d.items.into_iter().step_by(step).collect();
    let b = d
        .load_batch(0..d.len(), &digits_pre(), Device::Cpu)
        .unwrap();
    let labels = d.items.iter().map(|it| it.label.unwrap()).collect();
    // Pixels in [0,1]: the ink of a digit is bright on black.
    let pixels = (&b.x * 0.5 + 0.5).shallow_clone();
    (b.x, labels, pixels)
}

fn metrics() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("models/metrics.json")).unwrap()).unwrap()
}

#[test]
fn scores_are_cosine_similarities_to_class_prototypes() {
    let m = simclr();
    assert_eq!(m.num_classes, 10);
    let r = m.embedding.as_ref().unwrap();
    assert_eq!(r.dim, 64);
    assert_eq!(r.counts, vec![10; 10]);
    // Prototypes by hand: the mean unit embedding of each support class, renormalised.
    let sup = Dataset::from_inputs(&[fixture("data/digits_support")]).unwrap();
    let b = sup
        .load_batch(0..sup.len(), &digits_pre(), Device::Cpu)
        .unwrap();
    let e = unit(&m.embed(&b.x).unwrap());
    let protos: Vec<Tensor> = (0..10)
        .map(|c| {
            let rows: Vec<i64> = (0..sup.len() as i64)
                .filter(|&i| sup.items[i as usize].label == Some(c))
                .collect();
            e.index_select(0, &Tensor::from_slice(&rows)).mean_dim(
                [0].as_slice(),
                false,
                Kind::Float,
            )
        })
        .collect();
    let p = unit(&Tensor::stack(&protos, 0));
    let (x, labels, _) = test_images(1);
    let want = unit(&m.embed(&x).unwrap()).matmul(&p.tr());
    let got = m.logits(&x).unwrap();
    let diff = (&got - &want).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "scores differ from the cosines by {diff}");
    // The nearest-prototype accuracy the Python build measured, on the same 360 PNGs.
    let (pred, _) = m.decide(&got, "test images").unwrap();
    let acc = pred.iter().zip(&labels).filter(|(a, b)| a == b).count() as f64 / 360.0;
    let want_acc = metrics()["digits_simclr"]["nearest_prototype_test_acc"]
        .as_f64()
        .unwrap();
    assert!(
        (acc - want_acc).abs() < 1.5 / 360.0,
        "accuracy {acc} vs Python's {want_acc}"
    );
    // The temperature divides every score.
    let hot = simclr_with(&config(
        &std::fs::read_to_string(fixture("simclr.toml"))
            .unwrap()
            .replace("[embedding]", "[embedding]\ntemperature = 0.1"),
    ))
    .unwrap();
    let d = (hot.logits(&x).unwrap() - &got * 10.0)
        .abs()
        .max()
        .double_value(&[]);
    assert!(
        d < 1e-4,
        "temperature 0.1 must multiply the scores by 10 ({d})"
    );
}

fn ctx(m: &Model) -> Ctx<'_> {
    Ctx {
        model: m,
        seed: 0,
        internal_batch: 64,
        score: Score::Logit,
    }
}

/// `[B,H,W]` map magnitudes of `kind` on the similarity to the predicted prototype.
fn maps(m: &Model, kind: MethodKind, x: &Tensor, targets: &Tensor) -> Tensor {
    let ids: Vec<u64> = (0..x.size()[0] as u64).collect();
    MethodSpec::with_defaults(kind)
        .attribute(&ctx(m), x, targets, &ids)
        .unwrap()
        .maps
        .abs()
        .sum_dim_intlist([1].as_slice(), false, Kind::Float)
}

/// Deletion on the similarity (Petsiuk et al. 2018's deletion, at one step): the pixels a
/// map ranks first are set to grey (0 in model space, integrated gradients' baseline) and the mean similarity to the
/// explained prototype is measured again. A map that follows the model must lower it more
/// than deleting as many pixels at random; a model-blind map (fixed-random) cannot.
#[test]
fn similarity_explanations_are_faithful_and_the_model_blind_control_is_not() {
    let m = simclr();
    let (x, _, _) = test_images(9);
    let targets = m.logits(&x).unwrap().argmax(-1, false);
    let (base, random_drop) = deletion(&m, &x, &targets, None);
    let mut drops = Vec::new();
    for kind in [
        MethodKind::IntegratedGradients,
        MethodKind::Occlusion,
        MethodKind::FixedRandom,
    ] {
        let map = maps(&m, kind, &x, &targets);
        drops.push((kind.name(), deletion(&m, &x, &targets, Some(&map)).1));
    }
    eprintln!("mean similarity {base:.3}; drop after deleting 15% random pixels {random_drop:.3}, the top 15% of each map: {drops:.3?}");
    for (name, d) in &drops {
        if *name == "fixed-random" {
            assert!(
                *d < 1.3 * random_drop,
                "{name}: {d} vs random {random_drop}"
            );
        } else {
            assert!(
                *d > 1.5 * random_drop,
                "{name}: {d} vs random {random_drop}"
            );
        }
    }
}

/// Deletion on the similarity at one step: (the mean similarity of `x` to its `targets`, its
/// drop once the 15% of pixels `scores` `[B,H,W]` ranks first are set to 0 in model space);
/// random scores (seeded) when `scores` is None.
fn deletion(m: &Model, x: &Tensor, targets: &Tensor, scores: Option<&Tensor>) -> (f64, f64) {
    let (b, hw) = (x.size()[0], 28 * 28);
    let k = (hw as f64 * 0.15) as i64;
    let similarity = |x: &Tensor| {
        m.logits(x)
            .unwrap()
            .gather(1, &targets.view([-1, 1]), false)
            .mean(Kind::Float)
            .double_value(&[])
    };
    tch::manual_seed(0);
    let random = Tensor::rand([b, 28, 28], (Kind::Float, Device::Cpu));
    let scores = scores.unwrap_or(&random);
    let idx = scores.reshape([b, hw]).topk(k, 1, true, true).1;
    let keep = Tensor::ones([b, hw], (Kind::Float, Device::Cpu))
        .scatter_value(1, &idx, 0.0)
        .view([b, 1, 28, 28]);
    let base = similarity(x);
    (base, base - similarity(&(x * &keep)))
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A finished `xaudit check` of the SimCLR encoder on the digits test images.
struct Checked {
    _dir: tempfile::TempDir,
    out: std::path::PathBuf,
    text: String,
    code: Option<i32>,
}

impl Checked {
    fn report(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.out.join("report.json")).unwrap())
            .unwrap()
    }

    fn html(&self) -> String {
        std::fs::read_to_string(self.out.join("report.html")).unwrap()
    }
}

/// `check` with `config`, `suite`, `methods` and the first `images` digits test images.
fn check(config: &str, suite: &str, methods: &[&str], images: usize) -> Checked {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = args(&[
        "check",
        "fixtures/models/digits_simclr.pt",
        "--config",
        config,
        "--suite",
        suite,
        "--data",
        "fixtures/data/digits/test",
        "--max-images",
        &images.to_string(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    for m in methods {
        a.extend(args(&["--method", m]));
    }
    let o = xaudit(&a);
    Checked {
        _dir: dir,
        out,
        text: output_text(&o),
        code: o.status.code(),
    }
}

/// The verdict of audit `name` for `method` in a report.
fn verdict(r: &Value, name: &str, method: &str) -> String {
    r["audits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name && a["method"] == method)
        .map(|a| a["verdict"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn doctor_checks_the_embedding_contract_and_names_the_targets() {
    let o = xaudit(&args(&[
        "doctor",
        "fixtures/models/digits_simclr.pt",
        "--config",
        "fixtures/simclr.toml",
    ]));
    let text = output_text(&o);
    assert!(o.status.success(), "{text}");
    for want in [
        "kind: embedding, 64-dimensional embeddings",
        "targets: class prototypes: in use, 10 class prototypes from fixtures/data/digits_support (100 images), temperature 1",
        "features/head: ok, features [64, 7, 7]; CAM methods available",
        "contract: ok",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    // The same file declared as a classifier is a 64-class classifier: doctor says so.
    let o = xaudit(&args(&[
        "doctor",
        "fixtures/models/digits_simclr.pt",
        "--config",
        "fixtures/digits.toml",
    ]));
    assert!(output_text(&o).contains("kind: classifier\n  classes: 64"));
}

/// Each bad configuration: exit 2, one message naming the file and the fix, no panic.
#[test]
fn bad_embedding_configurations_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(fixture("simclr.toml")).unwrap();
    // A support set with an empty class folder.
    let sup = dir.path().join("support");
    for c in ["a", "b"] {
        std::fs::create_dir_all(sup.join(c)).unwrap();
    }
    std::fs::copy(
        fixture("data/digits_support/0/0000.png"),
        sup.join("a/x.png"),
    )
    .unwrap();
    let flat = dir.path().join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    std::fs::copy(
        fixture("data/digits_support/0/0000.png"),
        flat.join("x.png"),
    )
    .unwrap();
    let cases = [
        (
            base.replace("reference = \"prototypes\"", "reference = \"view\""),
            "prototypes is set with paired references",
        ),
        (
            format!("{base}\n[embedding.view]\nnoise = 0.1\n"),
            "[embedding.view] is set but reference is not \"view\"",
        ),
        (
            base.replace(
                "[embedding]",
                "[embedding]\nimages = \"fixtures/data/digits/test\"",
            ),
            "[embedding] images is set but reference is not \"image\"",
        ),
        (
            base.replace("reference = \"prototypes\"", "reference = \"image\"")
                .replace("prototypes = \"fixtures/data/digits_support\"", ""),
            "reference = \"image\" needs partner images",
        ),
        (
            base.replace("prototypes = \"fixtures/data/digits_support\"", ""),
            "[embedding] prototypes is not set",
        ),
        (
            base.replace("kind = \"embedding\"", ""),
            "[embedding] is set but [model] kind is \"classifier\"",
        ),
        (
            base.replace(
                "kind = \"embedding\"",
                "kind = \"embedding\"\nclass_names = [\"a\"]",
            ),
            "class_names is set for an embedding model",
        ),
        (
            base.replace("[embedding]", "[embedding]\ntemperature = 0"),
            "temperature = 0 is not a positive number",
        ),
        (
            base.replace("fixtures/data/digits_support", sup.to_str().unwrap()),
            "class folder `b` of the prototype support set has no image",
        ),
        (
            base.replace("fixtures/data/digits_support", flat.to_str().unwrap()),
            "not a folder of class sub-folders",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let cfg = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&cfg, text).unwrap();
        let o = xaudit(&args(&[
            "doctor",
            "fixtures/models/digits_simclr.pt",
            "--config",
            cfg.to_str().unwrap(),
        ]));
        let out = output_text(&o);
        assert_eq!(o.status.code(), Some(2), "{want}: {out}");
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
        assert!(out.contains("fix:"), "{out}");
        assert!(!out.contains("panicked"), "{out}");
    }
}

/// The sanity suite on the encoder: a model-dependent method passes cascading
/// randomisation, the model-blind controls (a fixed random map, an edge detector) fail
/// it, and the reports say what was explained.
#[test]
fn check_runs_on_the_embedding_model_and_the_model_blind_controls_fail() {
    let c = check(
        "fixtures/simclr.toml",
        "sanity",
        &["saliency", "fixed-random", "edge"],
        60,
    );
    assert_eq!(c.code, Some(1), "{}", c.text);
    let r = c.report();
    assert_eq!(verdict(&r, "cascading-randomization", "saliency"), "pass");
    assert_eq!(
        verdict(&r, "cascading-randomization", "fixed-random"),
        "fail"
    );
    assert_eq!(verdict(&r, "cascading-randomization", "edge"), "fail");
    assert_eq!(r["model"]["embedding"]["dim"], 64);
    assert_eq!(r["model"]["embedding"]["reference"], "prototypes");
    assert_eq!(r["model"]["num_classes"], 10);
    assert!(
        c.html().contains("64-dimensional embeddings; the explained score is the cosine similarity to 10 class prototypes"),
        "the HTML report names the embedding score"
    );
}

/// The robustness suite on the encoder: the fixed random map is perfectly stable, so it
/// would pass the stability audits trivially; its failed model-dependence prerequisite
/// fails the gate.
#[test]
fn the_robustness_suite_fails_the_model_blind_control_on_the_embedding_model() {
    let c = check("fixtures/simclr.toml", "robustness", &["fixed-random"], 40);
    assert_eq!(c.code, Some(1), "{}", c.text);
    assert!(
        c.text
            .contains("fixed-random's explanations are not shown to depend on the model"),
        "{}",
        c.text
    );
}

// ---------------------------------------------------------------- view references

fn views_config() -> Config {
    config(&std::fs::read_to_string(fixture("simclr_views.toml")).unwrap())
}

/// `explain` with `reference = "view"` explains both sides of each pair: the image against
/// its own seeded view, and the view against the image. Both maps are the gradient of the
/// cosine computed here by hand with the other side's embedding held fixed, and the
/// recorded similarity is that cosine.
#[test]
fn explain_explains_both_sides_of_each_view_pair() {
    let dir = tempfile::tempdir().unwrap();
    // explain the digit-3 folder with `seed`; its output folder and summary.json.
    let explain = |seed: &str| {
        let out = dir.path().join(format!("ex{seed}"));
        let o = xaudit(&args(&[
            "explain",
            "fixtures/models/digits_simclr.pt",
            "fixtures/data/digits/test/3",
            "--config",
            "fixtures/simclr_views.toml",
            "--method",
            "saliency",
            "--normalize",
            "none",
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
        ]));
        assert!(o.status.success(), "{}", output_text(&o));
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        (out, summary)
    };
    let (out, summary) = explain("7");
    let images = summary["images"].as_array().unwrap();
    assert_eq!(images.len(), 37);

    // The same pairs by hand: the views from the library's seeded draws.
    let cfg = views_config();
    let root = fixture("data/digits/test/3");
    let mut data = Dataset::from_inputs(std::slice::from_ref(&root)).unwrap();
    xaudit::embedding::label_by_position(&mut data);
    let run = xaudit::embedding::RunImages {
        data: &data,
        root: std::path::Path::new("fixtures/data/digits/test/3"),
        seed: 7,
    };
    let b = data.load_batch(0..4, &digits_pre(), Device::Cpu).unwrap();
    let aug = cfg.embedding.view.clone().unwrap();
    let paths: Vec<_> = images[..4]
        .iter()
        .map(|r| std::path::PathBuf::from(r["path"].as_str().unwrap()))
        .collect();
    let v = xaudit::embedding::views(&aug, &run, &digits_pre(), &b.x, &paths);
    let plain = Model::load(
        &fixture("models/digits_simclr.pt"),
        Device::Cpu,
        [1, 28, 28],
    )
    .unwrap();
    let (ex, ev) = (
        unit(&plain.embed(&b.x).unwrap()),
        unit(&plain.embed(&v).unwrap()),
    );
    let cos = (&ex * &ev).sum_dim_intlist([1].as_slice(), false, Kind::Float);
    // d cos(f(a), fixed) / d a, with a = the image or the view.
    let grad = |a: &Tensor, fixed: &Tensor| {
        tch::with_grad(|| {
            let leaf = a.detach().set_requires_grad(true);
            let s = (unit(&plain.forward_grad(&leaf).unwrap()) * fixed).sum(Kind::Float);
            Tensor::run_backward(&[&s], &[&leaf], false, false)
                .pop()
                .unwrap()
                .abs()
                .squeeze_dim(1)
        })
    };
    let (g_img, g_view) = (grad(&b.x, &ev), grad(&v, &ex));
    for (i, r) in images[..4].iter().enumerate() {
        assert_eq!(
            r["target"], i as i64,
            "each image is explained against its own view"
        );
        let vr = &r["view"];
        let sim = vr["similarity"].as_f64().unwrap();
        let want = cos.double_value(&[i as i64]);
        assert!((sim - want).abs() < 1e-5, "similarity {sim} vs {want}");
        for (file, g) in [(&r["map_file"], &g_img), (&vr["map_file"], &g_view)] {
            let (_, m) = xaudit::npy::read_f32(&out.join(file.as_str().unwrap())).unwrap();
            let got = Tensor::from_slice(&m).view([28, 28]);
            let d = common::rel_l2(&got, &g.get(i as i64));
            assert!(d < 1e-4, "{file}: relative difference {d}");
        }
        assert!(out.join(vr["pair_file"].as_str().unwrap()).exists());
        assert!(vr["augmentation"].as_str().unwrap().contains("rotate"));
    }
    // Another seed draws other views.
    let (_, s2) = explain("8");
    assert_ne!(
        s2["images"][0]["view"]["augmentation"],
        images[0]["view"]["augmentation"]
    );
}

/// `check` with view references: image i is scored against reference i, its own view; a
/// model-dependent method passes cascading randomisation and the model-blind control fails.
#[test]
fn check_with_view_references_fails_the_model_blind_control() {
    let c = check(
        "fixtures/simclr_views.toml",
        "sanity",
        &["saliency", "fixed-random"],
        90,
    );
    assert_eq!(c.code, Some(1), "{}", c.text);
    let r = c.report();
    assert_eq!(r["model"]["embedding"]["reference"], "view");
    assert_eq!(r["model"]["num_classes"], 90);
    assert_eq!(verdict(&r, "cascading-randomization", "saliency"), "pass");
    assert_eq!(
        verdict(&r, "cascading-randomization", "fixed-random"),
        "fail"
    );
}

#[test]
fn doctor_describes_view_references() {
    let base = args(&[
        "doctor",
        "fixtures/models/digits_simclr.pt",
        "--config",
        "fixtures/simclr_views.toml",
    ]);
    let o = xaudit(&base);
    let text = output_text(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("targets: second augmented views: in use, built from the images of `explain` and `check` (give --data to build them here)"), "{text}");
    let mut with_data = base.clone();
    with_data.extend(args(&["--data", "fixtures/data/digits/test"]));
    let text = output_text(&xaudit(&with_data));
    // The Python build measured 70.6% own-view retrieval over all 360 test images with its
    // own augmentation; doctor uses the first 256 and xaudit's seeded views.
    let pct: f64 = text
        .split("top-1 retrieval of the own view ")
        .nth(1)
        .and_then(|s| s.trim_end().split('%').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(pct > 50.0 && pct < 100.0, "{text}");
}

// ---------------------------------------------------------------- Interaction-CAM

/// Interaction-CAM against the official formula written out here (`get_interactioncam` of
/// fawazsammani/explain-cl): `Σ_c A¹_c · s¹_c · s²_c · ReLU(∂cos/∂A¹_c)`, with image 2 the
/// class prototype, whose channel summary is the mean over the class's support images.
#[test]
fn interaction_cam_follows_the_official_formula() {
    let m = simclr();
    let plain = Model::load(
        &fixture("models/digits_simclr.pt"),
        Device::Cpu,
        [1, 28, 28],
    )
    .unwrap();
    let sup = Dataset::from_inputs(&[fixture("data/digits_support")]).unwrap();
    let bs = sup
        .load_batch(0..sup.len(), &digits_pre(), Device::Cpu)
        .unwrap();
    let labels: Vec<i64> = sup.items.iter().map(|it| it.label.unwrap()).collect();
    let onehot = Tensor::from_slice(&labels).one_hot(10).to_kind(Kind::Float); // [100,10]
    let class_mean = |v: &Tensor| onehot.tr().matmul(v) / 10.0;
    let protos = unit(&class_mean(&unit(&plain.embed(&bs.x).unwrap())));
    let fs = plain.features(&bs.x).unwrap(); // [100,64,7,7]
    let (x, _, _) = test_images(36);
    let t = m.logits(&x).unwrap().argmax(-1, false);
    let feats = plain.features(&x).unwrap();
    let g = tch::with_grad(|| {
        let leaf = feats.detach().set_requires_grad(true);
        let e = unit(&plain.head(&leaf).unwrap());
        let s = (e * protos.index_select(0, &t)).sum(Kind::Float);
        Tensor::run_backward(&[&s], &[&leaf], false, false)
            .pop()
            .unwrap()
    });
    for (reduction, summary) in [
        (
            "mean",
            Box::new(|f: &Tensor| f.mean_dim([2, 3].as_slice(), false, Kind::Float))
                as Box<dyn Fn(&Tensor) -> Tensor>,
        ),
        (
            "max",
            Box::new(|f: &Tensor| f.amax([2, 3].as_slice(), false)),
        ),
    ] {
        let theirs = class_mean(&summary(&fs)).index_select(0, &t);
        let joint = (summary(&feats) * theirs).unsqueeze(-1).unsqueeze(-1);
        let want = (&feats * joint * g.relu())
            .sum_dim_intlist([1].as_slice(), true, Kind::Float)
            .upsample_bilinear2d([28, 28], false, None, None);
        let spec = MethodSpec::from_table(
            MethodKind::InteractionCam,
            &toml::from_str(&format!("reduction = \"{reduction}\"")).unwrap(),
        )
        .unwrap();
        let ids: Vec<u64> = (0..x.size()[0] as u64).collect();
        let got = spec.attribute(&ctx(&m), &x, &t, &ids).unwrap().maps;
        let d = common::rel_l2(&got, &want);
        assert!(d < 1e-4, "{reduction}: relative difference {d}");
    }
    // A classifier has no second image: the method says so and how to fix it.
    let digits = common::digits();
    let e = MethodSpec::with_defaults(MethodKind::InteractionCam)
        .attribute(&ctx(&digits), &x, &t, &[0])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("this model is a classifier") && e.contains("kind = \"embedding\""),
        "{e}"
    );
}

/// The faithfulness suite on the encoder: deletion records the similarity to the predicted
/// prototype (the softmax over prototypes is nearly flat at temperature 1), integrated
/// gradients' order deletes it faster than a random order, the model-blind control's does
/// not, and its failed model-dependence prerequisite fails the gate.
#[test]
fn faithfulness_curves_record_the_similarity_on_embedding_models() {
    let c = check(
        "fixtures/simclr.toml",
        "faithfulness",
        &["integrated-gradients", "fixed-random"],
        60,
    );
    assert_eq!(c.code, Some(1), "{}", c.text);
    let r = c.report();
    assert_eq!(verdict(&r, "deletion", "integrated-gradients"), "pass");
    assert_ne!(verdict(&r, "deletion", "fixed-random"), "pass");
    assert_eq!(
        verdict(&r, "cascading-randomization", "fixed-random"),
        "fail"
    );
    assert!(c.html().contains("similarity to the predicted reference"));
}

// ---------------------------------------------------------------- the pair methods of Sammani et al.

/// The encoder with paired references: the images of `root` (the first `n`, labelled by
/// position) and the `[embedding]` table `embedding`.
fn paired(embedding: &str, root: &str, n: usize) -> (Model, Tensor) {
    let cfg = config(&format!(
        "[preprocess]\nchannels = 1\nsize = [28, 28]\nmean = [0.5]\nstd = [0.5]\n\n[model]\nkind = \"embedding\"\n\n[embedding]\n{embedding}\n"
    ));
    let mut data = Dataset::from_inputs(&[std::path::PathBuf::from(root)]).unwrap();
    data.items.truncate(n);
    xaudit::embedding::label_by_position(&mut data);
    let run = xaudit::embedding::RunImages {
        data: &data,
        root: std::path::Path::new(root),
        seed: 0,
    };
    let m = xaudit::embedding::load(
        &fixture("models/digits_simclr.pt"),
        Device::Cpu,
        [1, 28, 28],
        &cfg,
        &digits_pre(),
        Some(&run),
    )
    .unwrap();
    let x = data
        .load_batch(0..data.len(), &digits_pre(), Device::Cpu)
        .unwrap()
        .x;
    (m, x)
}

/// Each image paired with itself (`reference = "image"`, the partner folder = the data).
fn self_paired(n: usize) -> (Model, Tensor) {
    paired(
        "reference = \"image\"\nimages = \"fixtures/data/digits/test/3\"",
        "fixtures/data/digits/test/3",
        n,
    )
}

/// The first `n` digit-3 images paired with their views: (model, images, targets = their
/// positions, the views' pixels).
fn view_pairs(n: i64) -> (Model, Tensor, Tensor, Tensor) {
    let (m, x) = paired(
        "reference = \"view\"",
        "fixtures/data/digits/test/3",
        n as usize,
    );
    let t = Tensor::arange(n, (Kind::Int64, Device::Cpu));
    let other = m
        .embedding
        .as_ref()
        .unwrap()
        .partner_pixels(&t, Device::Cpu)
        .unwrap();
    (m, x, t, other)
}

fn with(kind: MethodKind, table: &str) -> MethodSpec {
    MethodSpec::from_table(kind, &toml::from_str(table).unwrap()).unwrap()
}

fn cosine(a: &Tensor, b: &Tensor) -> Tensor {
    (unit(a) * unit(b)).sum_dim_intlist([1].as_slice(), false, Kind::Float)
}

/// Context-agnostic conditional occlusion against `occlusion_context_agnositc` of the official
/// code written out here: per window, cos(f(window kept alone) − f(window occluded),
/// prototype), then xaudit's shift of the lowest window to 0 and each pixel's mean over the
/// windows covering it.
#[test]
fn context_agnostic_occlusion_follows_the_official_formula() {
    let m = simclr();
    let (x, _, _) = test_images(60);
    let t = m.logits(&x).unwrap().argmax(-1, false);
    let protos = m.embedding.as_ref().unwrap().unit_cpu().index_select(0, &t);
    let (win, stride) = (8i64, 4i64);
    let n = (28 - win) / stride + 1; // the official output_size
    let b = x.size()[0];
    let mut grid = Vec::new();
    let mut masks = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let mk = Tensor::zeros([1, 1, 28, 28], (Kind::Float, Device::Cpu));
            let _ = mk
                .narrow(2, i * stride, win)
                .narrow(3, j * stride, win)
                .fill_(1.0);
            let kept = &x * &mk; // zeros elsewhere: the code's background
            let hidden = &x * (1.0 - &mk);
            let d = m.embed(&kept).unwrap() - m.embed(&hidden).unwrap();
            grid.push(cosine(&d, &protos));
            masks.push(mk.view([28 * 28]));
        }
    }
    let grid = Tensor::stack(&grid, 1); // [B, n*n]
    let grid = &grid - grid.amin([1].as_slice(), true);
    let masks = Tensor::stack(&masks, 0); // [n*n, 784]
    let want = (grid.matmul(&masks) / masks.sum_dim_intlist([0].as_slice(), false, Kind::Float))
        .view([b, 1, 28, 28]);
    let spec = with(
        MethodKind::ContextAgnosticOcclusion,
        "window = 8\nstride = 4",
    );
    let ids: Vec<u64> = (0..b as u64).collect();
    let got = spec.attribute(&ctx(&m), &x, &t, &ids).unwrap().maps;
    let d = common::rel_l2(&got, &want);
    assert!(d < 1e-4, "relative difference {d}");
}

/// Averaged transforms: the mean over the mixes of the official per-mix gradients (one
/// backward pass each, as `averaged_transforms` loops), times the image, equals xaudit's
/// single backward pass through the mean unit embedding of the mixes.
#[test]
fn averaged_transforms_averages_the_official_per_mix_gradients() {
    let (m, x, t, other) = view_pairs(5);
    let p = xaudit::attribution::averaged_transforms::Params::default();
    let ids: Vec<u64> = (0..5).collect();
    let mixes = xaudit::attribution::averaged_transforms::mixes(&p, &x, &other, &ids, 0)
        .unwrap()
        .view([5, 9, 1, 28, 28]);
    let mut grads = Vec::new();
    for j in 0..9 {
        let fixed = m.embed(&mixes.select(1, j)).unwrap();
        grads.push(tch::with_grad(|| {
            let leaf = x.detach().set_requires_grad(true);
            let s = cosine(&m.embed_grad(&leaf).unwrap(), &fixed).sum(Kind::Float);
            Tensor::run_backward(&[&s], &[&leaf], false, false)
                .pop()
                .unwrap()
        }));
    }
    let want = &x * Tensor::stack(&grads, 0).mean_dim([0].as_slice(), false, Kind::Float);
    let got = MethodSpec::with_defaults(MethodKind::AveragedTransforms)
        .attribute(&ctx(&m), &x, &t, &ids)
        .unwrap()
        .maps;
    let d = common::rel_l2(&got, &want);
    assert!(d < 1e-4, "relative difference {d}");
    // The same mixes again: the noise is keyed by the seed and the image.
    let again = xaudit::attribution::averaged_transforms::mixes(&p, &x, &other, &ids, 0).unwrap();
    assert!(common::max_abs_diff(&again.view([5, 9, 1, 28, 28]), &mixes) == 0.0);
}

/// Pairwise occlusion against `pairwise_occlusion` of the official code written out here, one
/// draw at a time: both images erased with the library's keyed rectangles, the softmax of the
/// similarity drops over the draws, and each draw's weight added to the erased rectangle of
/// the image whose erased embedding has the smaller norm.
#[test]
fn pairwise_occlusion_follows_the_official_loop() {
    use xaudit::attribution::pairwise_occlusion::{erase_rect, Params};
    let (m, x, t, other) = view_pairs(4);
    let p = Params {
        erases: 24,
        ..Params::default()
    };
    let ids: Vec<u64> = (0..4).collect();
    let got = with(MethodKind::PairwiseOcclusion, "erases = 24")
        .attribute(&ctx(&m), &x, &t, &ids)
        .unwrap()
        .maps;
    let erase = |img: &Tensor, r: Option<(usize, usize, usize, usize)>| {
        let mk = Tensor::zeros([1, 1, 28, 28], (Kind::Float, Device::Cpu));
        if let Some((a, b, h, w)) = r {
            let _ = mk
                .narrow(2, a as i64, h as i64)
                .narrow(3, b as i64, w as i64)
                .fill_(1.0);
        }
        (img * (1.0 - &mk), mk)
    };
    for i in 0..4i64 {
        let (x1, x2) = (x.narrow(0, i, 1), other.narrow(0, i, 1));
        let base = cosine(&m.embed(&x1).unwrap(), &m.embed(&x2).unwrap()).double_value(&[0]);
        let (mut drops, mut credit, mut rects) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..24u64 {
            let draw = |side: u64| {
                let mut rng = xaudit::rng::stream(0, "pairwise-occlusion", i as u64, 2 * k + side);
                erase_rect(&mut rng, 28, 28, &p)
            };
            let ((e1, m1), (e2, _)) = (erase(&x1, draw(0)), erase(&x2, draw(1)));
            let (o1, o2) = (m.embed(&e1).unwrap(), m.embed(&e2).unwrap());
            drops.push(base - cosine(&o1, &o2).double_value(&[0]));
            credit.push(o1.norm().double_value(&[]) < o2.norm().double_value(&[]));
            rects.push(m1);
        }
        let w = Tensor::from_slice(&drops).softmax(0, Kind::Double);
        let mut want = Tensor::zeros([1, 1, 28, 28], (Kind::Double, Device::Cpu));
        for k in 0..24 {
            if credit[k] {
                want += &rects[k] * w.double_value(&[k as i64]);
            }
        }
        let d = common::max_abs_diff(&got.narrow(0, i, 1), &want);
        assert!(d < 1e-5, "image {i}: max difference {d}");
    }
    // Class prototypes are no image: the method says so and how to fix it.
    let e = MethodSpec::with_defaults(MethodKind::PairwiseOcclusion)
        .attribute(&ctx(&simclr()), &x, &t.zeros_like(), &ids)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("class prototypes are no image")
            && e.contains("reference = \"view\" or \"image\""),
        "{e}"
    );
}

/// Known answers for the pair methods: with each image paired with itself, deleting the
/// pixels a model-dependent map ranks first lowers the pair's similarity more than deleting
/// as many random pixels (deletion at one step, as above); context-agnostic occlusion on the
/// class prototypes likewise. Pixel invariance explains what the similarity to augmented
/// copies rests on, the digit's strokes: its mass sits on the ink far above the ink's share
/// of the pixels.
#[test]
fn the_pair_methods_point_at_what_the_similarity_rests_on() {
    let (m, x) = self_paired(24);
    let t = Tensor::arange(24, (Kind::Int64, Device::Cpu));
    let (base, random_drop) = deletion(&m, &x, &t, None);
    assert!(
        base > 0.999,
        "an image paired with itself: similarity {base}"
    );
    let mut drops = Vec::new();
    for kind in [
        MethodKind::PairwiseOcclusion,
        MethodKind::AveragedTransforms,
        MethodKind::ContextAgnosticOcclusion,
    ] {
        let map = maps(&m, kind, &x, &t);
        drops.push((kind.name(), deletion(&m, &x, &t, Some(&map)).1));
    }
    let protos = simclr();
    let pt = protos.logits(&x).unwrap().argmax(-1, false);
    let map = maps(&protos, MethodKind::ContextAgnosticOcclusion, &x, &pt);
    let (_, proto_random) = deletion(&protos, &x, &pt, None);
    let proto_drop = deletion(&protos, &x, &pt, Some(&map)).1;
    eprintln!("self pairs: random deletion drop {random_drop:.4}, maps' {drops:.4?}; prototypes: random {proto_random:.4}, context-agnostic occlusion {proto_drop:.4}");
    for (name, d) in &drops {
        assert!(
            *d > 1.5 * random_drop,
            "{name}: {d} vs random {random_drop}"
        );
    }
    assert!(
        proto_drop > 1.5 * proto_random,
        "{proto_drop} vs {proto_random}"
    );
    // Pixel invariance: the share of the map's mass on ink (pixels above 0.5).
    let pi = maps(
        &m,
        MethodKind::PixelInvariance,
        &x.narrow(0, 0, 8),
        &t.narrow(0, 0, 8),
    );
    let ink = (&x.narrow(0, 0, 8) * 0.5 + 0.5)
        .squeeze_dim(1)
        .gt(0.5)
        .to_kind(Kind::Float);
    let share = ((&pi * &ink).sum(Kind::Float) / pi.sum(Kind::Float)).double_value(&[]);
    let ink_share = ink.mean(Kind::Float).double_value(&[]);
    eprintln!(
        "pixel invariance: {share:.3} of the mass on ink, which is {ink_share:.3} of the pixels"
    );
    assert!(share > 2.0 * ink_share, "{share} vs {ink_share}");
}

// ---------------------------------------------------------------- partner images

/// A config file in `dir` pairing each image with its partner under `images`.
fn partner_config(dir: &std::path::Path, name: &str, images: &std::path::Path) -> String {
    let text = std::fs::read_to_string(fixture("simclr_views.toml")).unwrap();
    let head = &text[..text.find("[embedding]").unwrap()];
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "{head}[embedding]\nreference = \"image\"\nimages = \"{}\"\n",
            images.display()
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

/// `explain` of `data` with `config` and `method`; its output folder and summary.json.
fn explain_pairs(
    dir: &std::path::Path,
    out: &str,
    data: &std::path::Path,
    config: &str,
    method: &str,
) -> (std::path::PathBuf, Value) {
    let out = dir.join(out);
    let o = xaudit(&args(&[
        "explain",
        "fixtures/models/digits_simclr.pt",
        data.to_str().unwrap(),
        "--config",
        config,
        "--method",
        method,
        "--normalize",
        "none",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{method}: {}", output_text(&o));
    let s =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    (out, s)
}

/// `reference = "image"`: each image against its partner, the file at the same relative path
/// under `images` (or one image for all). The recorded similarity is the cosine of the two
/// embeddings computed here; a missing partner is refused naming the file, nothing written.
#[test]
fn partner_images_pair_each_image_with_its_partner() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (folder, digit) in [(&a, 3), (&b, 5)] {
        std::fs::create_dir_all(folder).unwrap();
        let src = Dataset::from_inputs(&[fixture(&format!("data/digits/test/{digit}"))]).unwrap();
        for k in 0..4 {
            std::fs::copy(&src.items[k].path, folder.join(format!("p{k}.png"))).unwrap();
        }
    }
    let plain = Model::load(
        &fixture("models/digits_simclr.pt"),
        Device::Cpu,
        [1, 28, 28],
    )
    .unwrap();
    let load = |d: &std::path::Path| {
        let ds = Dataset::from_inputs(&[d.to_path_buf()]).unwrap();
        ds.load_batch(0..ds.len(), &digits_pre(), Device::Cpu)
            .unwrap()
            .x
    };
    let (xa, xb) = (load(&a), load(&b));
    // A folder of partners: p{k} of a against p{k} of b.
    let cfg = partner_config(dir.path(), "ab.toml", &b);
    let (_, s) = explain_pairs(dir.path(), "ab", &a, &cfg, "saliency");
    let want = cosine(&plain.embed(&xa).unwrap(), &plain.embed(&xb).unwrap());
    for (k, r) in s["images"].as_array().unwrap().iter().enumerate() {
        assert_eq!(r["target"], k as i64);
        let v = &r["view"];
        assert!(
            v["partner"]
                .as_str()
                .unwrap()
                .ends_with(&format!("b/p{k}.png")),
            "{v}"
        );
        assert_eq!(v["augmentation"], "none");
        let sim = v["similarity"].as_f64().unwrap();
        assert!((sim - want.double_value(&[k as i64])).abs() < 1e-5, "{sim}");
    }
    // One partner for all.
    let one = b.join("p2.png");
    let cfg1 = partner_config(dir.path(), "one.toml", &one);
    let (_, s1) = explain_pairs(dir.path(), "one", &a, &cfg1, "saliency");
    let e2 = plain
        .embed(&xb.narrow(0, 2, 1))
        .unwrap()
        .expand([4, 64], false);
    let want1 = cosine(&plain.embed(&xa).unwrap(), &e2);
    for (k, r) in s1["images"].as_array().unwrap().iter().enumerate() {
        let sim = r["view"]["similarity"].as_f64().unwrap();
        assert!(
            (sim - want1.double_value(&[k as i64])).abs() < 1e-5,
            "{sim}"
        );
        assert!(r["view"]["partner"].as_str().unwrap().ends_with("b/p2.png"));
    }
    // A missing partner: exit 2 naming it, no output.
    std::fs::copy(a.join("p0.png"), a.join("extra.png")).unwrap();
    let out = dir.path().join("missing");
    let o = xaudit(&args(&[
        "explain",
        "fixtures/models/digits_simclr.pt",
        a.to_str().unwrap(),
        "--config",
        &cfg,
        "--out",
        out.to_str().unwrap(),
    ]));
    let text = output_text(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(
        text.contains("b/extra.png") && text.contains("no partner image for"),
        "{text}"
    );
    assert!(
        text.contains("fix:") && !text.contains("panicked"),
        "{text}"
    );
    assert!(!out.exists());
    // doctor names the target in use and measures retrieval with --data.
    std::fs::remove_file(a.join("extra.png")).unwrap();
    let o = xaudit(&args(&[
        "doctor",
        "fixtures/models/digits_simclr.pt",
        "--config",
        &cfg,
        "--data",
        a.to_str().unwrap(),
    ]));
    let text = output_text(&o);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("targets: partner images: in use, a partner image for each of the 4 images"),
        "{text}"
    );
    assert!(
        text.contains("top-1 retrieval of the own partner"),
        "{text}"
    );
}

/// Swapping the two images of each pair mirrors the explanations: explaining a against b
/// gives (map of a, map of b), and explaining b against a gives (map of b, map of a), for
/// every pair method (the stochastic ones draw per image and side, so the same maps come
/// back). Compared file by file, the image's `.npy` of one run with the partner's
/// `.view.npy` of the other.
#[test]
fn swapping_the_two_images_mirrors_the_explanations() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (folder, digit) in [(&a, 3), (&b, 5)] {
        std::fs::create_dir_all(folder).unwrap();
        let src = Dataset::from_inputs(&[fixture(&format!("data/digits/test/{digit}"))]).unwrap();
        for k in 0..3 {
            std::fs::copy(&src.items[k + 4].path, folder.join(format!("q{k}.png"))).unwrap();
        }
    }
    let ab = partner_config(dir.path(), "ab.toml", &b);
    let ba = partner_config(dir.path(), "ba.toml", &a);
    for method in [
        "saliency",
        "smoothgrad",
        "interaction-cam",
        "context-agnostic-occlusion",
        "pairwise-occlusion",
        "averaged-transforms",
    ] {
        let (o1, s1) = explain_pairs(dir.path(), &format!("{method}-ab"), &a, &ab, method);
        let (o2, s2) = explain_pairs(dir.path(), &format!("{method}-ba"), &b, &ba, method);
        let read = |o: &std::path::Path, f: &Value| {
            let (_, v) = xaudit::npy::read_f32(&o.join(f.as_str().unwrap())).unwrap();
            Tensor::from_slice(&v)
        };
        for k in 0..3 {
            let (r1, r2) = (&s1["images"][k], &s2["images"][k]);
            let d_a = common::max_abs_diff(
                &read(&o1, &r1["map_file"]),
                &read(&o2, &r2["view"]["map_file"]),
            );
            let d_b = common::max_abs_diff(
                &read(&o1, &r1["view"]["map_file"]),
                &read(&o2, &r2["map_file"]),
            );
            assert!(d_a < 1e-6 && d_b < 1e-6, "{method}, pair {k}: {d_a} {d_b}");
            let (c1, c2) = (
                r1["view"]["similarity"].as_f64().unwrap(),
                r2["view"]["similarity"].as_f64().unwrap(),
            );
            assert!((c1 - c2).abs() < 1e-6, "{c1} {c2}");
        }
    }
}

/// `check` with paired references shows both sides of each example's pair: the audit's
/// pictures of the image, then the pair's view and the method's map of it explained against
/// the image (not for out-of-set inputs, which have no pair).
#[test]
fn check_reports_show_both_images_of_each_pair() {
    let c = check("fixtures/simclr_views.toml", "salience", &["saliency"], 12);
    let r = c.report();
    let mut paired = 0;
    for a in r["audits"].as_array().unwrap() {
        for e in a["examples"].as_array().unwrap() {
            let labels: Vec<&str> = e["panels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["label"].as_str().unwrap())
                .collect();
            let has = labels.ends_with(&["the pair's view", "view's map"]);
            if a["name"] == "out-of-set" {
                assert!(!has, "{labels:?}");
            } else {
                assert!(has, "{}: {labels:?}", a["name"]);
                paired += 1;
            }
        }
    }
    assert!(paired >= 8, "{paired} examples with both sides");
    let html = c.html();
    assert!(html.contains("the pair&#x27;s view") || html.contains("the pair's view"));
    assert!(html.contains("view&#x27;s map") || html.contains("view's map"));
}
