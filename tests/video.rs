//! Video classifiers (docs/model-contract.md, "Video classifiers"): the moving-digits 3D CNN
//! of fixtures/build_video.py. Known answers by construction: a clip's class (its digit) is
//! visible in exactly 3 of its 8 frames (fixtures/data/moving_digits/evidence.csv), so an
//! explanation of the model must put most of its mass in those frames, where a model-blind
//! map puts 3/8; a map that follows the clip must shift when the clip shifts in time; and
//! the model-blind controls must fail the suites.
mod common;
use common::{fixture, output_text, xaudit};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use tch::{Device, Tensor};
use xaudit::attribution::{Ctx, MethodKind, MethodSpec, Score};
use xaudit::config::{Config, Preprocess};
use xaudit::data::Dataset;
use xaudit::model::Model;

const FRAMES: i64 = 8;

fn config() -> Config {
    Config::parse(
        &std::fs::read_to_string(fixture("video.toml")).unwrap(),
        "video.toml",
    )
    .unwrap()
}

fn pre() -> Preprocess {
    config().preprocess.unwrap()
}

fn model() -> Model {
    let p = pre();
    xaudit::embedding::load(
        &fixture("models/video_digits.pt"),
        Device::Cpu,
        p.input_shape(),
        &config(),
        &p,
        None,
    )
    .unwrap()
}

fn clips() -> Dataset {
    Dataset::open(&[fixture("data/moving_digits/test")], &pre()).unwrap()
}

/// Evidence frames (first, last) of each clip, by its path under fixtures/data/moving_digits.
fn evidence() -> HashMap<String, (usize, usize)> {
    let root = fixture("data/moving_digits");
    let mut r = csv::Reader::from_path(root.join("evidence.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let (p, f, l) = (col("path"), col("first"), col("last"));
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[p].to_string(),
                (rec[f].parse().unwrap(), rec[l].parse().unwrap()),
            )
        })
        .collect()
}

/// A clip's key in `evidence()`: its path relative to fixtures/data/moving_digits.
fn key(path: &std::path::Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    let at = s.find("moving_digits/").expect("a fixture clip") + "moving_digits/".len();
    s[at..].to_string()
}

fn metrics() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("models/metrics.json")).unwrap()).unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn clips_load_from_frame_folders_and_npy_files_as_contact_sheets() {
    let d = clips();
    assert_eq!(d.len(), 40);
    assert_eq!(d.folder_classes.as_ref().map(Vec::len), Some(10));
    let dirs = d.items.iter().filter(|i| i.path.is_dir()).count();
    assert_eq!(dirs, 20, "half the clips are frame folders, half .npy");
    let b = d.load_batch(0..4, &pre(), Device::Cpu).unwrap();
    assert_eq!(b.x.size(), vec![4, 1, 28, 8 * 28]);
    // Frame k of a folder clip sits at columns 28k..28k+28 of its sheet, as the frame's own
    // PNG decodes.
    let i = d.items.iter().position(|i| i.path.is_dir()).unwrap();
    let b = d.load_batch(i..i + 1, &pre(), Device::Cpu).unwrap();
    let mut frames: Vec<PathBuf> = std::fs::read_dir(&d.items[i].path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    frames.sort();
    let mut single = pre();
    single.frames = None;
    for k in [0usize, 5] {
        let f = Dataset::from_inputs(std::slice::from_ref(&frames[k]))
            .unwrap()
            .load_batch(0..1, &single, Device::Cpu)
            .unwrap()
            .x;
        let part = b.x.narrow(3, 28 * k as i64, 28);
        assert_eq!(common::max_abs_diff(&part, &f), 0.0, "frame {k}");
    }
    // Same hashes on every run: a clip folder is hashed by its files.
    let m1 = d.manifest().unwrap();
    assert_eq!(m1[i].sha256, d.manifest().unwrap()[i].sha256);
    assert_eq!(m1[i].sha256.len(), 64);
}

#[test]
fn the_video_model_meets_its_contract_and_classifies_the_clips() {
    let m = model();
    let c = m.clip.expect("a video model");
    assert_eq!(c.frames, FRAMES);
    assert_eq!(c.feature_frames, Some(FRAMES));
    let d = clips();
    let b = d.load_batch(0..d.len(), &pre(), Device::Cpu).unwrap();
    let pred = Vec::<i64>::try_from(m.logits(&b.x).unwrap().argmax(1, false)).unwrap();
    let right = pred
        .iter()
        .zip(&b.labels)
        .filter(|(p, l)| Some(**p) == **l)
        .count();
    let acc = right as f64 / d.len() as f64;
    let want = metrics()["video_digits"]["test_accuracy"].as_f64().unwrap();
    assert!(
        (acc - want).abs() < 1e-9,
        "{acc} vs {want} measured by the build"
    );
    // Grad-CAM needs head(features(x)) == forward(x) through the sheet layout.
    let f = m.features(&b.x).unwrap();
    assert_eq!(f.size()[3] % FRAMES, 0);
    assert!(common::max_abs_diff(&m.head(&f).unwrap(), &m.logits(&b.x).unwrap()) < 1e-4);
}

fn ctx(m: &Model) -> Ctx<'_> {
    Ctx {
        model: m,
        seed: 0,
        internal_batch: 256,
        score: Score::Logit,
    }
}

/// Mean share of each method's min-max normalised map in the evidence frames, over the
/// test clips.
fn evidence_share(
    m: &Model,
    spec: &MethodSpec,
    x: &Tensor,
    t: &Tensor,
    ev: &[(usize, usize)],
) -> f64 {
    let ids: Vec<u64> = (0..ev.len() as u64).collect();
    let raw = spec.attribute(&ctx(m), x, t, &ids).unwrap().maps;
    // Min-max normalised first: RISE's and occlusion's maps carry an offset (the mean
    // score) that says nothing about where the evidence is.
    let maps = xaudit::attribution::normalize(
        &xaudit::attribution::aggregate(&raw, spec.kind().info().aggregate),
        xaudit::attribution::Normalize::Minmax,
    );
    let mass = xaudit::clip::frame_mass(&maps, FRAMES);
    let mut total = 0.0;
    for (i, (a, z)) in ev.iter().enumerate() {
        total += (*a..=*z)
            .map(|f| mass.double_value(&[i as i64, f as i64]))
            .sum::<f64>();
    }
    total / ev.len() as f64
}

/// Every method that runs on clips puts most of its mass in the frames that hold the digit
/// (3 of 8: 0.375 for a map that ignores the clip); the fixed random map does not.
#[test]
fn methods_put_their_mass_in_the_evidence_frames() {
    let m = model();
    let d = clips();
    let b = d.load_batch(0..d.len(), &pre(), Device::Cpu).unwrap();
    let ev_of = evidence();
    let ev: Vec<(usize, usize)> = b.paths.iter().map(|p| ev_of[&key(p)]).collect();
    let t = Tensor::from_slice(&b.labels.iter().map(|l| l.unwrap()).collect::<Vec<i64>>());
    let with = |kind: MethodKind, table: &str| {
        MethodSpec::from_table(kind, &table.parse::<toml::Table>().unwrap()).unwrap()
    };
    let mut shares = Vec::new();
    for (spec, floor) in [
        (with(MethodKind::Saliency, ""), 0.7),
        (
            with(
                MethodKind::IntegratedGradients,
                "steps = 16\nbaseline = -1.0",
            ),
            0.7,
        ),
        (with(MethodKind::Smoothgrad, "samples = 8"), 0.5),
        (
            with(
                MethodKind::Occlusion,
                "window = 10\nstride = 6\nbaseline = -1.0",
            ),
            0.4,
        ),
        (with(MethodKind::Rise, "masks = 300\ngrid = 4"), 0.4),
        (with(MethodKind::GradCam, ""), 0.4),
    ] {
        let s = evidence_share(&m, &spec, &b.x, &t, &ev);
        shares.push((spec.kind().info().name, s));
        eprintln!("{}: {s:.3}", spec.kind().info().name);
        assert!(
            s > floor,
            "{}: evidence share {s:.3} (floor {floor})",
            spec.kind().info().name
        );
    }
    // The vanilla gradient's share is the one PyTorch measured when the fixture was built.
    let want = metrics()["video_digits"]["saliency_evidence_share_test"]
        .as_f64()
        .unwrap();
    assert!(
        (shares[0].1 - want).abs() < 1e-4,
        "{} vs {want}",
        shares[0].1
    );
    let r = evidence_share(&m, &with(MethodKind::FixedRandom, ""), &b.x, &t, &ev);
    assert!(
        (r - 0.375).abs() < 0.05,
        "fixed-random evidence share {r:.3}"
    );
    eprintln!("evidence shares: {shares:?}, fixed-random {r:.3}");
}

/// Li et al.'s video extremal perturbation, on 8 clips (one batch of its optimiser): its
/// masks gather in and around the evidence frames (the temporal smoothness term spreads
/// them to the neighbouring frames).
#[test]
fn video_extremal_perturbation_finds_the_evidence_frames() {
    let m = model();
    let d = clips();
    let b = d.load_batch(0..8, &pre(), Device::Cpu).unwrap();
    let ev_of = evidence();
    let ev: Vec<(usize, usize)> = b.paths.iter().map(|p| ev_of[&key(p)]).collect();
    let t = Tensor::from_slice(&b.labels.iter().map(|l| l.unwrap()).collect::<Vec<i64>>());
    let spec = MethodSpec::from_table(
        MethodKind::ExtremalPerturbation,
        &"iterations = 600\nmax-blur = 8.0"
            .parse::<toml::Table>()
            .unwrap(),
    )
    .unwrap();
    let s = evidence_share(&m, &spec, &b.x, &t, &ev);
    assert!(
        s > 0.5,
        "extremal-perturbation: evidence share {s:.3} (chance 0.375)"
    );
}

#[test]
fn methods_without_clip_support_are_refused_with_the_list() {
    let m = model();
    let b = clips().load_batch(0..2, &pre(), Device::Cpu).unwrap();
    let t = Tensor::from_slice(&[0i64, 0]);
    let e = MethodSpec::with_defaults(MethodKind::ScoreCam)
        .attribute(&ctx(&m), &b.x, &t, &[0, 1])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("score-cam") && e.contains("video") && e.contains("grad-cam"),
        "{e}"
    );
}

#[test]
fn doctor_checks_the_video_contract() {
    let o = xaudit(&args(&[
        "doctor",
        "fixtures/models/video_digits.pt",
        "--config",
        "fixtures/video.toml",
    ]));
    let text = output_text(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("kind: video classifier"), "{text}");
    assert!(text.contains("[N, 1, 8, 28, 28]"), "{text}");
    assert!(text.contains("methods for clips: saliency"), "{text}");
    assert!(
        text.contains("features [C',T',h,w] = [64, 8, 7, 7]"),
        "{text}"
    );
}

#[test]
fn explain_writes_frame_maps_and_contact_sheets() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("e");
    let o = xaudit(&args(&[
        "explain",
        "fixtures/models/video_digits.pt",
        "fixtures/data/moving_digits/test/3",
        "--config",
        "fixtures/video.toml",
        "--method",
        "grad-cam",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{}", output_text(&o));
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let imgs = s["images"].as_array().unwrap();
    assert_eq!(imgs.len(), 4);
    assert_eq!(s["preprocess"]["frames"], 8);
    let ev = evidence();
    for r in imgs {
        let (shape, _) = xaudit::npy::read_f32(&out.join(r["map_file"].as_str().unwrap())).unwrap();
        assert_eq!(shape, vec![8, 28, 28]);
        let png = image::open(out.join(r["png_file"].as_str().unwrap())).unwrap();
        assert_eq!(png.width(), 8 * png.height(), "a strip of 8 square frames");
        let mass: Vec<f64> = r["frame_mass"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(mass.len(), 8);
        assert!((mass.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let (a, z) = ev[&key(std::path::Path::new(r["path"].as_str().unwrap()))];
        let inside: f64 = mass[a..=z].iter().sum();
        assert!(inside > 0.5, "{}: {inside}", r["path"]);
    }
}

/// A finished `xaudit check` of the video model on the test clips.
fn check(suite: &str, methods: &[&str], extra: &str) -> (Value, String, Option<i32>, String) {
    check_n(suite, methods, extra, 40)
}

/// As `check`, on the first `clips` clips.
fn check_n(
    suite: &str,
    methods: &[&str],
    extra: &str,
    clips: usize,
) -> (Value, String, Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cfg = dir.path().join("video.toml");
    std::fs::write(
        &cfg,
        // video.toml opens with a table, so `extra` may hold top-level keys or tables.
        format!(
            "{extra}\n{}",
            std::fs::read_to_string(fixture("video.toml")).unwrap()
        ),
    )
    .unwrap();
    let mut a = args(&[
        "check",
        "fixtures/models/video_digits.pt",
        "--config",
        cfg.to_str().unwrap(),
        "--suite",
        suite,
        "--data",
        "fixtures/data/moving_digits/test",
        "--max-images",
        &clips.to_string(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    for m in methods {
        a.extend(args(&["--method", m]));
    }
    let o = xaudit(&a);
    let text = output_text(&o);
    let r = std::fs::read_to_string(out.join("report.json"))
        .map(|s| serde_json::from_str(&s).unwrap())
        .unwrap_or(Value::Null);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap_or_default();
    (r, text, o.status.code(), html)
}

fn audit<'a>(r: &'a Value, name: &str, method: &str) -> &'a Value {
    r["audits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name && a["method"] == method)
        .unwrap_or_else(|| panic!("no {name} for {method}"))
}

/// The sanity suite: saliency's map depends on the weights, the model-blind controls' do
/// not; the report says it is a video model and shows frame strips.
#[test]
fn check_sanity_passes_saliency_and_fails_the_model_blind_controls() {
    let (r, text, code, html) = check("sanity", &["saliency", "fixed-random", "edge"], "");
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(r["model"]["frames"], 8);
    let v = |m: &str| audit(&r, "cascading-randomization", m)["verdict"].clone();
    assert_eq!(v("saliency"), "pass", "{text}");
    assert_eq!(v("fixed-random"), "fail");
    assert_eq!(v("edge"), "fail");
    assert!(
        html.contains("clips of 8 frames"),
        "the HTML cover names the video model"
    );
    assert!(
        html.contains("flex-direction: column"),
        "examples are frame strips"
    );
}

/// Equivariance in time: a time shift of the clip shifts saliency's map with it (PASS); a
/// fixed random map stays put (it fails, on top of its failed prerequisite). Audits whose
/// geometry is that of single images are NOT RUN, with the reason.
#[test]
fn check_salience_tests_time_shifts_and_skips_image_only_audits() {
    let (r, text, code, _) = check(
        "salience",
        &["saliency", "fixed-random"],
        "[audits.equivariance]\nparams = { transforms = [\"time-shift\"] }\n",
    );
    assert!(code == Some(1), "{text}");
    let eq = audit(&r, "equivariance", "saliency");
    assert_eq!(eq["verdict"], "pass", "{eq}");
    assert_eq!(audit(&r, "equivariance", "fixed-random")["verdict"], "fail");
    let deg = audit(&r, "salience-degradation", "saliency");
    assert_eq!(deg["verdict"], "not-run");
    assert!(
        deg["reason"].as_str().unwrap_or_default().contains("video")
            || deg.to_string().contains("does not measure video models"),
        "{deg}"
    );
}

/// The robustness suite on clips: the attacks and sensitivity audits measure the video
/// model (their L∞ budget is per pixel, so the same in every frame) and reach a verdict or
/// an honest INCONCLUSIVE on 12 clips (min-n lowered to 10 to keep the test short), never an
/// error or NOT RUN; the model-blind fixed random map, perfectly stable under every attack,
/// fails its model-dependence prerequisite, and with it the gate.
#[test]
fn check_robustness_attacks_clips_and_fails_the_model_blind_control() {
    let (r, text, code, _) = check_n(
        "robustness",
        &["saliency", "fixed-random"],
        "min-n = 10",
        12,
    );
    assert_eq!(code, Some(1), "{text}");
    for name in [
        "attack-random-sign",
        "attack-top-k",
        "sensitivity-max",
        "attack-targeted",
    ] {
        let a = audit(&r, name, "saliency");
        let v = a["verdict"].as_str().unwrap();
        assert!(["pass", "fail", "inconclusive"].contains(&v), "{name}: {v}");
        assert!(a["n"].as_u64().unwrap() >= 10, "{name}: n = {}", a["n"]);
    }
    // Its failed model dependence fails the gate: it would pass the stability audits
    // trivially (a map that never moves), which the report says means nothing.
    assert_eq!(
        audit(&r, "cascading-randomization", "fixed-random")["verdict"],
        "fail"
    );
    assert!(
        text.contains("fixed-random's explanations are not shown to depend on the model"),
        "{text}"
    );
}

/// Faithfulness on frames and tubes (Li et al. 2021 evaluate video explanations by the
/// frames and regions they remove): deleting whole frames in the order of saliency's frame
/// mass, black as the baseline (the clips' other frames are nearly black), destroys the
/// prediction faster than a random order of frames, because the evidence sits in 3 known
/// frames; likewise squares through all frames ("tubes"). The model-blind fixed random map
/// does not pass.
#[test]
fn deletion_by_frames_and_tubes_finds_the_evidence() {
    let dir = tempfile::tempdir().unwrap();
    for (unit, units) in [("frame", 8), ("tube", 49)] {
        let suite = dir.path().join(format!("{unit}.toml"));
        std::fs::write(
            &suite,
            format!("name = \"by-{unit}\"\ndescription = \"deletion by {unit}\"\nmethods = [\"saliency\"]\n\n[[audit]]\nid = \"deletion\"\nthreshold = 0.0\nparams = {{ unit = \"{unit}\", baseline = \"black\" }}\nrationale = \"test\"\n"),
        )
        .unwrap();
        let (r, text, _, _) = check(suite.to_str().unwrap(), &["saliency", "fixed-random"], "");
        let d = audit(&r, "deletion", "saliency");
        assert_eq!(d["verdict"], "pass", "{unit}: {text}");
        assert_ne!(
            audit(&r, "deletion", "fixed-random")["verdict"],
            "pass",
            "{unit}"
        );
        assert_eq!(d["summary"]["units"], units);
        let curve = &d["curves"][0];
        assert!(
            curve["x_label"]
                .as_str()
                .unwrap()
                .starts_with(&format!("fraction of {unit}s removed")),
            "{curve}"
        );
        // One step per unit at most: 8 frames give 9 points.
        assert_eq!(
            curve["x"].as_array().unwrap().len(),
            1 + units.min(20) as usize
        );
    }
    // Frames of an image model: refused with the fix (exit 2).
    let o = xaudit(&args(&[
        "check",
        "fixtures/models/digits_cnn_s0.pt",
        "--config",
        "fixtures/digits.toml",
        "--suite",
        dir.path().join("frame.toml").to_str().unwrap(),
        "--data",
        "fixtures/data/digits/test",
        "--max-images",
        "10",
        "--out-dir",
        dir.path().join("img").to_str().unwrap(),
    ]));
    let text = output_text(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(
        text.contains("unit = \"frame\"") && text.contains("fix:"),
        "{text}"
    );
}

#[test]
fn bad_video_inputs_are_refused_with_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // A clip of 3 frames where the model needs 8.
    let short = dir.path().join("short");
    std::fs::create_dir_all(&short).unwrap();
    let src = fixture("data/moving_digits/test/0/clip_00");
    for k in 0..3 {
        std::fs::copy(
            src.join(format!("{k:03}.png")),
            short.join(format!("{k:03}.png")),
        )
        .unwrap();
    }
    // A float .npy clip.
    let float = dir.path().join("float.npy");
    xaudit::npy::write_f32(&float, &[8, 28, 28, 1], &vec![0.5; 8 * 28 * 28]).unwrap();
    for (input, want) in [(&short, "3 frame"), (&float, "not uint8")] {
        let o = xaudit(&args(&[
            "explain",
            "fixtures/models/video_digits.pt",
            input.to_str().unwrap(),
            "--config",
            "fixtures/video.toml",
            "--method",
            "saliency",
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ]));
        let text = output_text(&o);
        assert_eq!(o.status.code(), Some(2), "{text}");
        assert!(
            text.contains(input.file_name().unwrap().to_str().unwrap()),
            "{text}"
        );
        assert!(text.contains(want), "{text}");
        assert!(!dir.path().join("o").exists(), "no half-written output");
    }
    // Configurations: a video model needs frames; frames need a video model.
    for (text, want) in [
        (
            "[model]\nkind = \"video\"\n[preprocess]\nchannels = 1\nsize = [28, 28]\n",
            "frames is not set",
        ),
        (
            "[preprocess]\nchannels = 1\nsize = [28, 28]\nframes = 8\n",
            "kind is not \"video\"",
        ),
    ] {
        let e = Config::parse(text, "bad.toml").err().unwrap().to_string();
        assert!(e.contains(want) && e.contains("bad.toml"), "{e}");
    }
}
