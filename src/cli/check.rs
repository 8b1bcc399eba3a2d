//! `xaudit check MODEL --suite NAME|PATH`: run a suite, print the verdicts, exit with the gate.
use super::CommonArgs;
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use xaudit::attribution::MethodKind;
use xaudit::audit::RunCtx;
use xaudit::check::{self, Plan};
use xaudit::data::Dataset;
use xaudit::model::Model;
use xaudit::report::{self, EmbeddingInfo, Format, ModelInfo, Provenance, ReportInputs};
use xaudit::suite::Suite;

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Output on stdout.
    #[arg(long, value_parser = super::named(&Format::ALL), default_value = "table", env = "XAUDIT_FORMAT")]
    pub format: Format,
    /// Write the report files here (report.json, report.html, junit.xml, report.sarif,
    /// report.md, or the `formats` of xaudit.toml).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Files to write under --out-dir (repeatable; overrides `formats` in xaudit.toml).
    #[arg(long = "write", value_parser = super::named(&Format::ALL))]
    pub write: Vec<Format>,
    /// Model trained on shuffled labels (enables data-randomization).
    #[arg(long)]
    pub random_label_model: Option<PathBuf>,
    /// Folder of out-of-set images (added to the generated ones in out-of-set).
    #[arg(long)]
    pub out_of_set: Option<PathBuf>,
    /// Images decoded and audited together (default: the automatic internal batch size, so
    /// audits that evaluate one input per image per step still fill a model pass).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Most model inputs per forward/backward pass.
    /// Default: measured, the smallest power of two within 5% of the fastest forward+backward
    /// rate up to the memory bound (256 up to ~64k values per image, then fewer so one pass
    /// holds about 16M input values), probed once per model, device, input shape and threads
    /// and cached under ~/.cache/xaudit; recorded in the report.
    #[arg(long)]
    pub internal_batch_size: Option<usize>,
    /// One input per model pass: bitwise-identical numbers whatever the batch sizes (slower).
    #[arg(long)]
    pub per_sample: bool,
    /// A previous run's report.json: the gate also fails when a result got significantly
    /// worse than there (default: `[baseline] path` in xaudit.toml).
    #[arg(long, value_name = "REPORT_JSON")]
    pub baseline: Option<PathBuf>,
    /// Measure every image for every audit and test at that fixed n (the behaviour before
    /// sequential mode). By default `check` is sequential: images are taken in a seeded
    /// random order and each audit whose test has an anytime-valid form stops as soon as its
    /// verdict is decided (sharded and --baseline runs are always fixed-n).
    #[arg(long)]
    pub fixed_n: bool,
    /// Always exit 0 unless xaudit itself failed (exit 2 / 101 still apply).
    #[arg(long)]
    pub exit_zero: bool,
    /// Measure only the I-th of N deterministic slices of the data set (0-based; contiguous
    /// blocks of whole batches) and write --out-dir/partial-I-of-N.json: per-image values
    /// and provenance, no verdicts. `xaudit merge` joins the partials and decides.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<xaudit::shard::Shard>,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

fn sha256_file(p: &Path) -> Result<String> {
    Ok(xaudit::data::sha256_file(p)?)
}

/// sha256 over "sha256  path" lines of every image, in data-set order.
fn data_manifest_sha256(images: &[xaudit::report::ImageRecord]) -> String {
    let mut h = Sha256::new();
    for it in images {
        h.update(format!("{}  {}\n", it.sha256, it.path).as_bytes());
    }
    format!("{:x}", h.finalize())
}

/// What `check` and `calibrate` both run: a model, a suite, images, methods, a seed.
#[derive(Args)]
pub struct RunArgs {
    /// TorchScript model file (see docs/model-contract.md).
    pub model: PathBuf,
    /// Built-in suite (robustness, sanity, salience, faithfulness, fuzz, full) or a suite TOML file
    /// (default: `suite` in xaudit.toml, else robustness).
    #[arg(long)]
    pub suite: Option<String>,
    /// Images: folder, ImageFolder tree or CSV manifest (default: `data` in xaudit.toml).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Audit only these methods (repeatable; default: the configuration's, else the suite's).
    #[arg(long = "method", value_parser = super::named(MethodKind::ALL))]
    pub methods: Vec<MethodKind>,
    /// Seed of every random draw (default: `seed` in xaudit.toml, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Use at most N images: the first N, or with sequential `check` the first N of the
    /// seeded random order (a random sample), which is also the audits' cap.
    #[arg(long)]
    pub max_images: Option<usize>,
    /// Smooth surrogate of the model (the same network with ReLU replaced by softplus): the
    /// attacks take their gradient through it (default: `[model] surrogate` in xaudit.toml).
    #[arg(long, value_name = "FILE")]
    pub surrogate: Option<PathBuf>,
    /// An independently trained copy of the model (same architecture and data, another
    /// seed) for run-to-run stability; repeatable (default: `[model] replicas`).
    #[arg(long = "replica", value_name = "FILE")]
    pub replicas: Vec<PathBuf>,
}

impl RunArgs {
    /// The suite (flag, configuration, else robustness) and the seed.
    pub(super) fn suite_and_seed(&self, cfg: &xaudit::config::Config) -> Result<(Suite, u64)> {
        let key = self
            .suite
            .clone()
            .or(cfg.suite.clone())
            .unwrap_or_else(|| "robustness".into());
        Ok((Suite::load(&key)?, self.seed.or(cfg.seed).unwrap_or(0)))
    }

    /// The surrogate model, if one is given, loaded like the model.
    pub(super) fn surrogate(
        &self,
        cfg: &xaudit::config::Config,
        main: &Model,
        shape: [i64; 3],
    ) -> Result<Option<Model>> {
        match self.surrogate.as_ref().or(cfg.model.surrogate.as_ref()) {
            Some(p) => Ok(Some(xaudit::embedding::load_like(main, p, shape)?)),
            None => Ok(None),
        }
    }

    /// The replicas given on the command line, else in the configuration, loaded like the model.
    pub(super) fn replicas(
        &self,
        cfg: &xaudit::config::Config,
        pre: &xaudit::config::Preprocess,
        run: &xaudit::embedding::RunImages,
        device: tch::Device,
        shape: [i64; 3],
    ) -> Result<Vec<Model>> {
        let paths = if self.replicas.is_empty() {
            &cfg.model.replicas
        } else {
            &self.replicas
        };
        Ok(paths
            .iter()
            .map(|p| xaudit::embedding::load(p, device, shape, cfg, pre, Some(run)))
            .collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// The images and the model, on `device`.
    pub(super) fn inputs(
        &self,
        cfg: &xaudit::config::Config,
        device: &str,
        pre: &xaudit::config::Preprocess,
    ) -> Result<Inputs> {
        self.inputs_in_order(cfg, device, pre, None)
    }

    /// `inputs`, the images in the seeded random order of `shuffle` (sequential runs).
    pub(super) fn inputs_in_order(
        &self,
        cfg: &xaudit::config::Config,
        device: &str,
        pre: &xaudit::config::Preprocess,
        shuffle: Option<u64>,
    ) -> Result<Inputs> {
        load_inputs(
            &self.model,
            self.data.as_ref(),
            cfg,
            self.max_images,
            device,
            pre,
            shuffle,
            self.seed.or(cfg.seed).unwrap_or(0),
        )
    }
}

/// The images, device and model of a run, checked against each other.
pub(super) struct Inputs {
    pub data_path: PathBuf,
    pub data: Dataset,
    pub device: tch::Device,
    pub model: Model,
    /// How class folders were numbered (see `Dataset::relabel`).
    pub labels: xaudit::data::LabelInfo,
}

/// Loads the data set (at most `max_images`) and the model, and checks the labels.
#[allow(clippy::too_many_arguments)]
pub(super) fn load_inputs(
    model_path: &Path,
    data: Option<&PathBuf>,
    cfg: &xaudit::config::Config,
    max_images: Option<usize>,
    device: &str,
    pre: &xaudit::config::Preprocess,
    shuffle: Option<u64>,
    seed: u64,
) -> Result<Inputs> {
    let data_path = data
        .cloned()
        .or(cfg.data.clone())
        .context("no images given: pass --data DIR|CSV or set `data = \"...\"` in xaudit.toml")?;
    let mut ds = Dataset::open(std::slice::from_ref(&data_path), pre)?;
    let origin = cfg
        .origin
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "configuration".into());
    let names = xaudit::embedding::class_names(cfg)?;
    let labels = ds.relabel(cfg.model.labels, names.as_deref(), &origin)?;
    if let Some(note) = &labels.note {
        eprintln!("note: {}: {note}", data_path.display());
    }
    let mut labels = labels;
    if let Some(seed) = shuffle {
        // The cap then takes a random sample, not the first folders.
        let order = ds.shuffle(seed, &data_path);
        if let Some((_, alt)) = labels.alternative.as_mut() {
            let old = std::mem::take(alt);
            *alt = order
                .iter()
                .map(|&i| old.get(i).copied().flatten())
                .collect();
        }
    }
    if let Some(n) = max_images {
        anyhow::ensure!(n >= 1, "--max-images must be at least 1");
        ds.items.truncate(n);
    }
    if let (Some((_, alt)), Some(n)) = (labels.alternative.as_mut(), max_images) {
        alt.truncate(n);
    }
    if xaudit::embedding::uses_pairs(cfg) {
        xaudit::embedding::label_by_position(&mut ds);
        labels = xaudit::data::LabelInfo::default();
    }
    let dev = xaudit::device::parse_device(device)?;
    let shape = pre.input_shape();
    if device.trim().eq_ignore_ascii_case("auto") && dev == tch::Device::Cpu {
        eprintln!("note: --device auto found no CUDA device; running on the CPU");
    }
    let run = xaudit::embedding::RunImages {
        data: &ds,
        root: &data_path,
        seed,
    };
    let model = xaudit::embedding::load(model_path, dev, shape, cfg, pre, Some(&run))?;
    if let Some(it) = ds
        .items
        .iter()
        .find(|it| it.label.is_some_and(|l| l < 0 || l >= model.num_classes))
    {
        return Err(xaudit::Error::data(
            &it.path,
            format!(
                "label {} is not a class of the model ({} classes)",
                it.label.unwrap_or_default(),
                model.num_classes
            ),
            "fix the manifest or folder layout so labels are class indices of this model (class folders: [model] labels = \"folder-index\" | \"folder-name\", or class_names)",
        )
        .into());
    }
    Ok(Inputs {
        data_path,
        data: ds,
        device: dev,
        model,
        labels,
    })
}

/// A progress bar on an interactive terminal, hidden in CI or with `--no-progress`.
pub(super) fn progress_bar(no_progress: bool) -> ProgressBar {
    let show = !no_progress && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    let bar = if show {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:40} {bar:30.cyan/blue} {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// `--internal-batch-size`, else the measured best for this model, device, shape and threads
/// (probed once, then cached; said on stderr when probed).
pub(super) fn internal_batch(
    flag: Option<usize>,
    model: &Model,
    model_sha256: &str,
) -> Result<xaudit::throughput::BatchChoice> {
    if let Some(n) = flag {
        return Ok(xaudit::throughput::BatchChoice::flag(n));
    }
    let c = xaudit::throughput::tuned_batch(model, model_sha256, tch::get_num_threads())?;
    if c.source == "probe" {
        let rates: Vec<String> = c
            .points
            .iter()
            .map(|p| format!("{}: {:.0}/s", p.batch, p.images_per_s))
            .collect();
        eprintln!(
            "note: internal batch size {} (forward+backward images/s by batch size {}; probed in {:.1} s, cached{}; --internal-batch-size overrides)",
            c.size,
            rates.join(", "),
            c.probe_seconds.unwrap_or(0.0),
            xaudit::throughput::cache_file()
                .map(|f| format!(" in {}", f.display()))
                .unwrap_or_default()
        );
    }
    Ok(c)
}

pub(super) fn sha256_of(p: &Path) -> Result<String> {
    sha256_file(p)
}

/// Writes the report files, then prints the report in `format` (and, for the table, the
/// files written). Files first: if they cannot be written, the run is an error (exit 2),
/// not a verdict.
pub(super) fn emit(
    report: &xaudit::report::Report,
    out_dir: Option<&Path>,
    files: &[Format],
    format: Format,
) -> Result<()> {
    let written = match out_dir {
        Some(dir) => report::write_all(dir, report, files)
            .with_context(|| format!("cannot write the reports under {}", dir.display()))?,
        None => Vec::new(),
    };
    let text = format.render(report);
    outln!("{}", text.trim_end());
    if format == Format::Table {
        for p in &written {
            outln!("wrote {}", p.display());
        }
    }
    Ok(())
}

/// The report files to write: `--write`, else `formats` in xaudit.toml, else the defaults.
pub(super) fn report_files(write: &[Format], cfg: &xaudit::config::Config) -> Vec<Format> {
    if !write.is_empty() {
        write.to_vec()
    } else {
        cfg.formats
            .clone()
            .unwrap_or_else(|| report::DEFAULT_FILES.to_vec())
    }
}

/// `--shard` needs audits that measure each image on its own.
fn check_shardable(plan: &Plan) -> Result<()> {
    let whole: Vec<String> = plan
        .gates
        .iter()
        .filter(|g| !g.entry.shardable)
        .map(|g| format!("{} {}", g.entry.doc.code, g.entry.doc.name))
        .collect();
    if whole.is_empty() {
        return Ok(());
    }
    Err(xaudit::Error::config(
        "--shard",
        format!(
            "{} need(s) every image in one process and cannot be sharded yet",
            whole.join(", ")
        ),
        "run those audits without --shard (a suite file without them for the sharded run, see docs/scale/README.md), or run the whole suite on one machine",
    )
    .into())
}

/// The absolute form of a path that exists (so a merge elsewhere in the tree finds it).
fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

pub fn run(a: CheckArgs) -> Result<i32> {
    if a.common.device.contains(',') {
        return run_on_devices(a);
    }
    let started = chrono::Local::now();
    let (cfg, pre) = a.common.resolve()?;
    let (suite, seed) = a.run.suite_and_seed(&cfg)?;
    let out_dir = a.out_dir.clone().or(cfg.out_dir.clone());
    let files = report_files(&a.write, &cfg);
    let today = started.format("%Y-%m-%d").to_string();
    let mut plan = Plan::new(&suite, &cfg, &a.run.methods, seed, &today)?;
    let baseline = a.baseline.as_ref().or(cfg.baseline.path.as_ref());
    // Shards run to their cap and the merge decides at fixed n; a baseline comparison pairs
    // every image with its earlier value, so it needs every image too.
    let sequential = !a.fixed_n && a.shard.is_none() && baseline.is_none();
    if !a.fixed_n && a.shard.is_none() && baseline.is_some() {
        eprintln!("note: a run with a baseline measures every image (fixed n), so that every image can be compared with its earlier value");
    }
    plan.settings.sequential = sequential;
    if a.shard.is_some() {
        check_shardable(&plan)?;
        anyhow::ensure!(
            out_dir.is_some(),
            "--shard writes partial-I-of-N.json under --out-dir DIR (or `out_dir` in xaudit.toml); give one"
        );
    } else if let Some(b) = baseline {
        // The baseline is read before any model pass: a wrong file fails in a second.
        // (A sharded run reads it in `merge`.)
        plan.set_baseline(b, &cfg)?;
    }
    let mut notices = Vec::new();
    if plan.baseline.as_ref().is_some_and(|b| b.report.sequential) {
        notices.push(format!(
            "the baseline {} is a sequential run: each audit kept only the images it needed, so few images pair with this run and comparisons fall back to two-sample tests; write baselines with `check --fixed-n`",
            baseline.map(|p| p.display().to_string()).unwrap_or_default()
        ));
    }
    let Inputs {
        data_path,
        data,
        device,
        model,
        labels,
    } = a
        .run
        .inputs_in_order(&cfg, &a.common.device, &pre, sequential.then_some(seed))?;
    let shape = model.input_shape;
    let rl_model = match &a.random_label_model {
        Some(p) => Some(xaudit::embedding::load(
            p,
            device,
            shape,
            &cfg,
            &pre,
            Some(&xaudit::embedding::RunImages {
                data: &data,
                root: &data_path,
                seed,
            }),
        )?),
        None => None,
    };
    let oos = match &a.out_of_set {
        Some(p) => Some(Dataset::open(std::slice::from_ref(p), &pre)?),
        None => None,
    };
    let model_sha256 = sha256_file(&a.run.model)?;
    let internal = internal_batch(a.internal_batch_size, &model, &model_sha256)?;
    let bar = progress_bar(a.no_progress);
    let tick = |n: usize| bar.inc(n as u64);
    let mut ctx = RunCtx::new(
        &model,
        &data,
        &pre,
        seed,
        a.batch_size
            .unwrap_or_else(|| xaudit::throughput::auto_batch(model.input_shape)),
        internal.size,
        &tick,
    );
    ctx.random_label_model = rl_model.as_ref();
    let surrogate = a.run.surrogate(&cfg, &model, shape)?;
    ctx.surrogate = surrogate.as_ref();
    let replicas = a.run.replicas(
        &cfg,
        &pre,
        &xaudit::embedding::RunImages {
            data: &data,
            root: &data_path,
            seed,
        },
        device,
        shape,
    )?;
    ctx.replicas = replicas.iter().collect();
    // Paired references: the same encoder scoring each partner against its own image, for
    // the reports' second side of each example.
    let partner_model = match model.embedding.as_ref().and_then(|r| r.swapped()) {
        Some(r) => {
            Some(xaudit::model::Model::load(&a.run.model, device, shape)?.with_references(r))
        }
        None => None,
    };
    ctx.partner_model = partner_model.as_ref();
    ctx.per_sample = a.per_sample || cfg.per_sample.unwrap_or(false);
    ctx.out_of_set = oos.as_ref();
    ctx.shard = a.shard.map(|s| (s.index, s.count));
    let measured_images = {
        let b = ctx.batches();
        b.first().map_or(0, |r| r.start)..b.last().map_or(0, |r| r.end)
    };
    let on_start = |g: &xaudit::suite::Gate, m: MethodKind| {
        bar.reset();
        bar.set_length(measured_images.len() as u64);
        bar.set_message(format!("{} {}", g.entry.doc.name, m.name()));
    };
    // The run's provenance, for a shard's partial (no data hash: the merge adds it) and for a
    // full report alike.
    let provenance = |data_sha256: String| -> Result<Provenance> {
        Ok(Provenance {
            xaudit_version: env!("CARGO_PKG_VERSION").into(),
            libtorch_version: env!("XAUDIT_LIBTORCH_VERSION").into(),
            device: xaudit::device::describe(device),
            threads: tch::get_num_threads(),
            command_line: std::env::args().collect(),
            suite: suite.name.clone(),
            suite_origin: suite.origin.clone(),
            suite_sha256: suite.sha256.clone(),
            config: cfg.origin.as_ref().map(|p| p.display().to_string()),
            config_sha256: cfg.origin.as_deref().map(sha256_file).transpose()?,
            data: data_path.display().to_string(),
            data_count: data.len(),
            data_sha256,
            random_label_model: a
                .random_label_model
                .as_ref()
                .map(|p| p.display().to_string()),
            out_of_set: a.out_of_set.as_ref().map(|p| p.display().to_string()),
            started: started.to_rfc3339(),
            finished: chrono::Local::now().to_rfc3339(),
            internal_batch: Some(internal.clone()),
        })
    };
    if let Some(shard) = a.shard {
        let preflight = check::preflight_counts(&ctx, labels.alternative.as_ref())?;
        let measured = check::measure(&ctx, &plan, on_start)?;
        bar.finish_and_clear();
        let images = data.manifest()?;
        let other_models = [
            a.run.surrogate.as_ref().or(cfg.model.surrogate.as_ref()),
            a.random_label_model.as_ref(),
        ]
        .into_iter()
        .flatten()
        .chain(if a.run.replicas.is_empty() {
            cfg.model.replicas.iter()
        } else {
            a.run.replicas.iter()
        })
        .map(|p| sha256_file(p))
        .collect::<Result<Vec<_>>>()?;
        let key = xaudit::shard::RunKey {
            xaudit_version: env!("CARGO_PKG_VERSION").into(),
            model_sha256: model_sha256.clone(),
            suite: suite.name.clone(),
            suite_sha256: suite.sha256.clone(),
            config_sha256: cfg.origin.as_deref().map(sha256_file).transpose()?,
            preprocess: serde_json::to_value(&pre)?,
            seed,
            data_sha256: data_manifest_sha256(&images),
            data_count: data.len(),
            methods: plan.methods.iter().map(|m| m.name().to_string()).collect(),
            batch_size: ctx.batch_size,
            internal_batch: internal.size,
            per_sample: ctx.per_sample,
            other_models,
            out_of_set: oos.as_ref().map(|_| "given".to_string()),
        };
        let suite_key = a
            .run
            .suite
            .clone()
            .or(cfg.suite.clone())
            .unwrap_or_else(|| "robustness".into());
        let invocation = xaudit::shard::Invocation {
            suite: if Path::new(&suite_key).exists() {
                absolute(Path::new(&suite_key)).display().to_string()
            } else {
                suite_key
            },
            config: cfg.origin.as_deref().map(absolute),
            methods: a.run.methods.iter().map(|m| m.name().to_string()).collect(),
            baseline: baseline.map(|b| absolute(b)),
            exit_zero: a.exit_zero,
        };
        let partial = xaudit::shard::Partial {
            kind: xaudit::shard::KIND.into(),
            version: xaudit::shard::VERSION.into(),
            shard,
            run: key,
            invocation,
            images,
            measured_images,
            preflight,
            measured,
            model: ModelInfo {
                path: a.run.model.display().to_string(),
                sha256: model_sha256,
                num_classes: model.num_classes,
                num_parameters: model.num_parameters,
                embedding: model.embedding.as_ref().map(EmbeddingInfo::of),
                frames: model.clip.map(|c| c.frames),
            },
            provenance: provenance(String::new())?,
        };
        let Some(dir) = out_dir.as_deref() else {
            anyhow::bail!("--shard writes partial-I-of-N.json under --out-dir DIR; give one");
        };
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(shard.file_name());
        partial.write(&path)?;
        outln!(
            "shard {}/{}: images {}..{} of {} measured; wrote {} (merge with `xaudit merge {}/partial-*-of-{}.json`)",
            shard.index,
            shard.count,
            partial.measured_images.start,
            partial.measured_images.end,
            data.len(),
            path.display(),
            dir.display(),
            shard.count
        );
        return Ok(0);
    }
    if sequential {
        // The accuracy check needs only a sample, and the order is random: the first look's
        // images, so that no image is predicted only for it.
        let first = check::look_schedule(data.len(), plan.settings.min_n)[0];
        ctx.window = Some(0..first);
    }
    let mut warnings = notices;
    warnings.extend(check::preflight(&ctx, labels.alternative.as_ref())?);
    ctx.window = None;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let outcome = if sequential {
        check::run_sequential(&mut ctx, &plan, |g, m, images| {
            bar.reset();
            bar.set_length(images.len() as u64);
            bar.set_message(format!(
                "{} {} (images {}..{})",
                g.entry.doc.name,
                m.name(),
                images.start,
                images.end
            ));
        })?
    } else {
        check::run(&ctx, &plan, on_start)?
    };
    bar.finish_and_clear();
    let exit_code = if a.exit_zero && outcome.exit_code == 1 {
        0
    } else {
        outcome.exit_code
    };
    let model_info = ModelInfo {
        path: a.run.model.display().to_string(),
        sha256: model_sha256,
        num_classes: model.num_classes,
        num_parameters: model.num_parameters,
        embedding: model.embedding.as_ref().map(EmbeddingInfo::of),
        frames: model.clip.map(|c| c.frames),
    };
    let provenance = provenance(data_manifest_sha256(&outcome.images))?;
    let report = xaudit::check::report(
        &plan,
        outcome,
        ReportInputs {
            model: model_info,
            provenance,
            exit_code,
            warnings,
        },
    );
    emit(&report, out_dir.as_deref(), &files, a.format)?;
    Ok(exit_code)
}

/// `--device cuda:0,cuda:1,...`: one shard per device in parallel processes (this binary,
/// the same arguments plus `--shard I/N --device D`), then the merge, in this process.
fn run_on_devices(a: CheckArgs) -> Result<i32> {
    anyhow::ensure!(
        a.shard.is_none(),
        "--device with several devices runs its own shards; drop --shard"
    );
    let devices: Vec<String> = a
        .common
        .device
        .split(',')
        .map(|d| d.trim().to_string())
        .collect();
    anyhow::ensure!(
        devices.iter().all(|d| !d.is_empty()),
        "--device {}: an empty device name in the list (e.g. --device cuda:0,cuda:1)",
        a.common.device
    );
    for d in &devices {
        xaudit::device::parse_device(d)?;
    }
    let n = devices.len();
    let (cfg, _) = a.common.resolve()?;
    let out_dir = a.out_dir.clone().or(cfg.out_dir.clone());
    let scratch = match &out_dir {
        Some(d) => d.join(".shards"),
        None => std::env::temp_dir().join(format!("xaudit-shards-{}", std::process::id())),
    };
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    // The command line minus what the parent keeps (device, outputs, gate options).
    let mut base: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(x) = args.next() {
        let key = x.split('=').next().unwrap_or_default();
        let takes_value = ["--device", "--out-dir", "--format", "--write", "--baseline"];
        if takes_value.contains(&key) {
            if !x.contains('=') {
                args.next();
            }
            continue;
        }
        if key == "--exit-zero" {
            continue;
        }
        base.push(x);
    }
    // CPU shards share the cores: without --threads each would start one OpenMP thread per
    // core, and oversubscribed OpenMP threads spin (measured: 5x slower in tests/shard.rs).
    let all_cpu = devices.iter().all(|d| d.eq_ignore_ascii_case("cpu"));
    if all_cpu && a.common.threads.is_none() {
        let share = (tch::get_num_threads().max(1) as usize / n).max(1);
        base.extend(["--threads".to_string(), share.to_string()]);
    }
    let exe = std::env::current_exe().context("cannot find the xaudit executable")?;
    eprintln!("running {n} shards in parallel on {}", devices.join(", "));
    let children = devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut c = std::process::Command::new(&exe);
            c.args(&base)
                .args([
                    "--device",
                    d,
                    "--shard",
                    &format!("{i}/{n}"),
                    "--no-progress",
                ])
                .arg("--out-dir")
                .arg(&scratch)
                .stdout(std::process::Stdio::null());
            c.spawn()
                .with_context(|| format!("cannot start the shard on {d}"))
                .map(|ch| (d.clone(), ch))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut failed = Vec::new();
    for (d, mut ch) in children {
        let st = ch.wait()?;
        if !st.success() {
            failed.push(format!("{d} (exit {})", st.code().unwrap_or(-1)));
        }
    }
    anyhow::ensure!(
        failed.is_empty(),
        "shard(s) on {} failed; see their messages above",
        failed.join(", ")
    );
    let partials: Vec<PathBuf> = (0..n)
        .map(|i| scratch.join(xaudit::shard::Shard { index: i, count: n }.file_name()))
        .collect();
    let code = super::merge::merge_and_report(super::merge::MergeOptions {
        partials: partials.clone(),
        out_dir,
        files: report_files(&a.write, &cfg),
        format: a.format,
        baseline: a.baseline.clone(),
        exit_zero: a.exit_zero,
    })?;
    for p in &partials {
        let _ = std::fs::remove_file(p);
    }
    let _ = std::fs::remove_dir(&scratch);
    Ok(code)
}
