//! report.html in a real browser: a small fixture `xaudit check` is rendered in headless
//! Chromium (found or installed by scripts/ensure-chromium.sh, never skipped) driven over the
//! DevTools protocol. The page must load with no console error or warning, no uncaught
//! exception and no request other than the report file itself and data: URLs (every request
//! is recorded; anything else is also blocked, so a defect never reaches the network). The
//! rendered page must agree with report.json (verdict, every audit's result, charts, decoded
//! images, no horizontal overflow at 1280 px), and a full-page screenshot is saved to
//! target/browser/report.png. A second test shows the detection catches injected defects.
//!
//! `XAUDIT_EXAMPLES_DIR=DIR` (`make examples`: reports/examples/) writes the run's report.html
//! and report.md to DIR instead of target/browser/check/, and a screenshot of the top of the
//! page (cover, summary, the first result down to its first chart) to DIR/report.png.
use headless_chrome::browser::tab::RequestPausedDecision;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Emulation, Fetch, Network, Page};
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;

/// A working Chromium/Chrome: the path scripts/ensure-chromium.sh prints (it installs
/// Debian's chromium when none is found, or fails naming the fix).
fn chromium() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let o = Command::new("bash")
            .arg(Path::new(ROOT).join("scripts/ensure-chromium.sh"))
            .output()
            .expect("run scripts/ensure-chromium.sh");
        let out = String::from_utf8_lossy(&o.stdout);
        let path = out.lines().last().unwrap_or("").trim();
        assert!(
            o.status.success() && !path.is_empty(),
            "the browser test needs Chromium and scripts/ensure-chromium.sh could not provide it:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        PathBuf::from(path)
    })
}

/// Where the fixture run writes (its report files) and the screenshot goes.
struct Outputs {
    /// As passed to `--out-dir` (relative to the repository in examples mode, so the committed
    /// report shows no machine-specific path).
    out_dir_arg: String,
    out_dir: PathBuf,
    /// Always target/browser/report.png.
    full_screenshot: PathBuf,
    /// The top of the page, in examples mode.
    example_screenshot: Option<PathBuf>,
    examples: bool,
}

fn outputs() -> Outputs {
    let root = Path::new(ROOT);
    let full_screenshot = root.join("target/browser/report.png");
    match std::env::var("XAUDIT_EXAMPLES_DIR") {
        Ok(d) if !d.is_empty() => Outputs {
            out_dir: root.join(&d),
            example_screenshot: Some(root.join(&d).join("report.png")),
            out_dir_arg: d,
            full_screenshot,
            examples: true,
        },
        _ => {
            let out = root.join("target/browser/check");
            Outputs {
                out_dir_arg: out.to_string_lossy().into_owned(),
                out_dir: out,
                full_screenshot,
                example_screenshot: None,
                examples: false,
            }
        }
    }
}

/// `xaudit check MODEL` with the sanity suite for saliency and Grad-CAM on 40 digits.
fn sanity_run(model: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xaudit"))
        .args([
            "check",
            model,
            "--suite",
            "sanity",
            "--method",
            "saliency",
            "--method",
            "grad-cam",
            "--config",
            "fixtures/digits.toml",
            "--data",
            "fixtures/data/digits/test",
            "--max-images",
            "40",
        ])
        .args(extra)
        .current_dir(ROOT)
        .env("CI", "1")
        .output()
        .expect("run xaudit")
}

/// The fixture run, once per test binary: the sanity suite on the digits CNN for saliency and
/// Grad-CAM over 40 images (a failing, passing and not-run audit, histograms, layer curves
/// and example images; about 15 s on 2 CPU cores). Returns report.html and report.json.
fn fixture_report() -> &'static (PathBuf, Value) {
    static RUN: OnceLock<(PathBuf, Value)> = OnceLock::new();
    RUN.get_or_init(|| {
        let o = outputs();
        if !o.examples {
            let _ = std::fs::remove_dir_all(&o.out_dir);
        }
        std::fs::create_dir_all(&o.out_dir).unwrap();
        let t = Instant::now();
        // A baseline (another seed of the CNN) so the page also shows the regression table
        // and the per-image paired differences.
        let base = sanity_run(
            "fixtures/models/digits_cnn_s1.pt",
            &["--write", "json", "--out-dir", BASELINE_DIR],
        );
        assert!(
            matches!(base.status.code(), Some(0 | 1)),
            "baseline run failed: {}",
            String::from_utf8_lossy(&base.stderr)
        );
        let baseline = format!("{BASELINE_DIR}/report.json");
        let run = sanity_run(
            "fixtures/models/digits_cnn_s0.pt",
            &[
                "--baseline",
                &baseline,
                "--write",
                "json",
                "--write",
                "html",
                "--write",
                "markdown",
                "--out-dir",
                &o.out_dir_arg,
            ],
        );
        eprintln!("xaudit check: {:.1} s", t.elapsed().as_secs_f64());
        assert!(
            matches!(run.status.code(), Some(0 | 1)),
            "xaudit check failed: {:?}\n{}",
            run.status,
            String::from_utf8_lossy(&run.stderr)
        );
        let json_path = o.out_dir.join("report.json");
        let report: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
        if o.examples {
            // The example is report.html, report.md and the screenshot; report.json would add
            // most of the bytes.
            std::fs::remove_file(&json_path).unwrap();
        }
        (o.out_dir.join("report.html"), report)
    })
}

/// Everything the page did while loading.
#[derive(Default, Debug)]
struct Recorded {
    /// Every request the page made (Network.requestWillBeSent, and those the interceptor
    /// paused that the network domain had not reported): (type, URL).
    requests: Vec<(String, String)>,
    urls: BTreeSet<String>,
    /// Console API calls: (type, text).
    console: Vec<(String, String)>,
    /// Uncaught exceptions.
    exceptions: Vec<String>,
    /// Browser log entries (failed loads, interventions, deprecations...): (level, source, text).
    log: Vec<(String, String, String)>,
    /// Requests that failed or were blocked: "URL: error".
    failed: Vec<String>,
    /// Request id -> URL, to name failed requests.
    ids: std::collections::HashMap<String, String>,
}

fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn short(url: &str) -> String {
    if url.len() > 80 {
        format!("{}… ({} chars)", &url[..60], url.len())
    } else {
        url.to_owned()
    }
}

impl Recorded {
    fn request(&mut self, kind: &str, url: &str) {
        if self.urls.insert(url.to_owned()) || kind != "paused" {
            self.requests.push((kind.to_owned(), url.to_owned()));
        }
    }

    fn on_event(&mut self, e: &Event) {
        match e {
            Event::NetworkRequestWillBeSent(e) => {
                let kind = e.params.Type.as_ref().map(name).unwrap_or_default();
                self.request(&kind, &e.params.request.url);
                self.ids
                    .insert(e.params.request_id.clone(), e.params.request.url.clone());
            }
            Event::NetworkLoadingFailed(e) => {
                let p = &e.params;
                let url = self.ids.get(&p.request_id).map_or("?".into(), |u| short(u));
                self.failed.push(format!("{url}: {}", p.error_text));
            }
            Event::RuntimeConsoleAPICalled(e) => {
                let text: Vec<String> = e
                    .params
                    .args
                    .iter()
                    .map(|a| match &a.value {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => a.description.clone().unwrap_or_default(),
                    })
                    .collect();
                self.console.push((name(&e.params.Type), text.join(" ")));
            }
            Event::RuntimeExceptionThrown(e) => {
                let d = &e.params.exception_details;
                let what = d
                    .exception
                    .as_ref()
                    .and_then(|x| x.description.clone())
                    .unwrap_or_default();
                self.exceptions.push(format!("{} {what}", d.text));
            }
            Event::LogEntryAdded(e) => {
                let x = &e.params.entry;
                let text = match &x.url {
                    Some(u) => format!("{} ({})", x.text, short(u)),
                    None => x.text.clone(),
                };
                self.log.push((name(&x.level), name(&x.source), text));
            }
            _ => {}
        }
    }

    /// What fails the test. Errors and warnings alike: the report has no JavaScript and loads
    /// nothing, so any warning Chromium reports about it (deprecated or intervened features,
    /// blocked content, CSP, quirks) is a defect of the page, not noise. Info and verbose log
    /// entries are printed, not failed.
    fn problems(&self, page_url: &str) -> Vec<String> {
        let mut p = Vec::new();
        for u in &self.urls {
            if u != page_url && !u.starts_with("data:") {
                p.push(format!("request other than the report and data: URLs: {u}"));
            }
        }
        for (kind, text) in &self.console {
            if matches!(kind.as_str(), "error" | "warning" | "assert") {
                p.push(format!("console.{kind}: {text}"));
            }
        }
        for e in &self.exceptions {
            p.push(format!("uncaught exception: {e}"));
        }
        for (level, source, text) in &self.log {
            if matches!(level.as_str(), "error" | "warning") {
                p.push(format!("browser log {level} ({source}): {text}"));
            }
        }
        p
    }

    fn print(&self, what: &str) {
        let data = self.requests.iter().filter(|(_, u)| u.starts_with("data:"));
        let distinct = self.urls.iter().filter(|u| u.starts_with("data:")).count();
        eprintln!(
            "{what}: {} request(s), {} of them data: URLs ({distinct} distinct); {} console message(s), {} exception(s), {} log entries",
            self.requests.len(),
            data.count(),
            self.console.len(),
            self.exceptions.len(),
            self.log.len()
        );
        for (k, u) in self
            .requests
            .iter()
            .filter(|(_, u)| !u.starts_with("data:"))
        {
            eprintln!("  request {k} {}", short(u));
        }
        for (k, t) in &self.console {
            eprintln!("  console.{k}: {t}");
        }
        for e in &self.exceptions {
            eprintln!("  exception: {e}");
        }
        for (l, s, t) in &self.log {
            eprintln!("  log {l} ({s}): {t}");
        }
        for f in &self.failed {
            eprintln!("  failed {f}");
        }
    }
}

fn launch() -> Browser {
    let opts = LaunchOptions {
        headless: true,
        // Tests run as root in CI containers, where Chromium's sandbox cannot start; the page
        // is our own local file.
        sandbox: false,
        window_size: Some((WIDTH, HEIGHT)),
        path: Some(chromium().clone()),
        idle_browser_timeout: Duration::from_secs(300),
        args: vec![
            // Belt and braces behind the request interceptor: no name resolves, no proxy.
            OsStr::new("--host-resolver-rules=MAP * ~NOTFOUND"),
            OsStr::new("--no-proxy-server"),
            OsStr::new("--hide-scrollbars"),
            OsStr::new("--force-device-scale-factor=1"),
        ],
        ..LaunchOptions::default()
    };
    Browser::new(opts).expect("launch headless Chromium")
}

/// `file://` URL of an absolute path, percent-encoded as Chromium reports it.
fn file_url(path: &Path) -> String {
    let p = path.canonicalize().unwrap();
    let mut url = String::from("file://");
    for b in p.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

fn cdp<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("DevTools method parameters")
}

/// Loads `html` in a fresh tab at 1280×900 with every event recorded and every request other
/// than file: and data: blocked, waits until the page settled and its images decoded.
fn load(browser: &Browser, html: &Path) -> (Arc<Tab>, Recorded, String) {
    let url = file_url(html);
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(60));
    let rec = Arc::new(Mutex::new(Recorded::default()));
    let r = rec.clone();
    tab.add_event_listener(Arc::new(move |e: &Event| r.lock().unwrap().on_event(e)))
        .unwrap();
    let r = rec.clone();
    tab.enable_request_interception(Arc::new(
        move |_, _, ev: Fetch::events::RequestPausedEvent| {
            let u = ev.params.request.url;
            r.lock().unwrap().request("paused", &u);
            if u.starts_with("file:") || u.starts_with("data:") {
                RequestPausedDecision::Continue(None)
            } else {
                RequestPausedDecision::Fail(Fetch::FailRequest {
                    request_id: ev.params.request_id,
                    error_reason: Network::ErrorReason::BlockedByClient,
                })
            }
        },
    ))
    .unwrap();
    tab.call_method::<Emulation::SetDeviceMetricsOverride>(cdp(json!({
        "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false
    })))
    .unwrap();
    tab.enable_runtime().unwrap();
    tab.enable_log().unwrap();
    tab.call_method::<Network::Enable>(cdp(json!({}))).unwrap();
    tab.enable_fetch(None, None).unwrap();
    tab.navigate_to(&url)
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    tab.evaluate(
        "Promise.all(Array.from(document.images, i => i.decode().catch(() => null))).then(() => document.fonts.ready).then(() => true)",
        true,
    )
    .unwrap();
    // Events travel on their own thread: let the last ones arrive.
    std::thread::sleep(Duration::from_millis(500));
    let recorded = std::mem::take(&mut *rec.lock().unwrap());
    (tab, recorded, url)
}

/// Resource references to other origins in the HTML (a cheap second line behind the
/// browser): http(s), protocol-relative or other non-data URLs in attributes that load
/// something (src, srcset, non-anchor href, data, poster, ...), CSS url() and @import, and any
/// URL in a script. Anchors' href and SVG xmlns name no resource.
fn static_resource_refs(html: &str) -> Vec<String> {
    fn remote(v: &str) -> bool {
        let v = v.trim().to_ascii_lowercase();
        !(v.is_empty()
            || v.starts_with('#')
            || v.starts_with("data:")
            || !(v.starts_with("//") || v.contains("://")))
    }
    fn css(text: &str, found: &mut Vec<String>) {
        let low = text.to_ascii_lowercase();
        if let Some(i) = low.find("@import") {
            found.push(text[i..].chars().take(80).collect());
        }
        for (i, _) in low.match_indices("url(") {
            let arg: String = text[i + 4..].chars().take_while(|&c| c != ')').collect();
            if remote(arg.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace())) {
                found.push(format!("url({arg})"));
            }
        }
    }
    let mut found = Vec::new();
    let b = html.as_bytes();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let start = i + off;
        i = start + 1;
        if !b.get(i).is_some_and(|c| c.is_ascii_alphabetic()) {
            continue;
        }
        // The tag, up to a '>' outside quotes.
        let mut j = i;
        let mut quote = None;
        while j < b.len() {
            match (quote, b[j]) {
                (None, b'"' | b'\'') => quote = Some(b[j]),
                (Some(q), c) if c == q => quote = None,
                (None, b'>') => break,
                _ => {}
            }
            j += 1;
        }
        let tag = &html[i..j.min(b.len())];
        i = (j + 1).min(b.len());
        let tag_name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        // Attributes: name[=value].
        let rest = &tag[tag_name.len()..];
        let rb = rest.as_bytes();
        let mut k = 0;
        while k < rb.len() {
            while k < rb.len() && (rb[k].is_ascii_whitespace() || rb[k] == b'/') {
                k += 1;
            }
            let n0 = k;
            while k < rb.len() && !rb[k].is_ascii_whitespace() && rb[k] != b'=' && rb[k] != b'/' {
                k += 1;
            }
            let attr = rest[n0..k].to_ascii_lowercase();
            if k < rb.len() && rb[k] == b'=' {
                k += 1;
                let value = if k < rb.len() && (rb[k] == b'"' || rb[k] == b'\'') {
                    let q = rb[k];
                    let v0 = k + 1;
                    k = v0;
                    while k < rb.len() && rb[k] != q {
                        k += 1;
                    }
                    let v = &rest[v0..k.min(rb.len())];
                    k += 1;
                    v
                } else {
                    let v0 = k;
                    while k < rb.len() && !rb[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    &rest[v0..k]
                };
                let flagged = match attr.as_str() {
                    "href" => tag_name != "a" && remote(value),
                    "srcset" => value.split(',').any(remote),
                    "style" => {
                        css(value, &mut found);
                        false
                    }
                    _ => {
                        remote(value)
                            && matches!(
                                attr.as_str(),
                                "src"
                                    | "data"
                                    | "poster"
                                    | "background"
                                    | "action"
                                    | "formaction"
                                    | "xlink:href"
                                    | "manifest"
                                    | "ping"
                                    | "codebase"
                                    | "archive"
                            )
                    }
                };
                if flagged {
                    found.push(format!("<{tag_name} {attr}=\"{}\">", short(value)));
                }
            } else if n0 == k {
                k += 1;
            }
        }
        // Raw text elements: CSS must not import or url() anything remote, scripts must not
        // name any URL.
        if tag_name == "style" || tag_name == "script" {
            let close = format!("</{tag_name}");
            let end = html[i..]
                .to_ascii_lowercase()
                .find(&close)
                .map_or(html.len(), |e| i + e);
            let body = &html[i..end];
            if tag_name == "style" {
                css(body, &mut found);
            } else if ["://", "'//", "\"//", "`//"]
                .iter()
                .any(|u| body.contains(u))
            {
                found.push(format!("<script> naming a URL: {}", short(body.trim())));
            }
            i = end;
        }
    }
    found
}

/// Where the baseline run writes its report.json (relative to the repository).
const BASELINE_DIR: &str = "target/browser/baseline";

/// The page as rendered, read back through the DOM.
const PAGE_FACTS: &str = r##"(() => {
  const q = (s) => Array.from(document.querySelectorAll(s));
  const rows = (id) => {
    const t = document.getElementById(id)?.nextElementSibling;
    return t && t.tagName === 'TABLE' ? t.rows.length - 1 : 0;
  };
  return JSON.stringify({
    title: document.title,
    banner: document.querySelector('.banner')?.textContent ?? '',
    summary_rows: rows('summary'),
    baseline_rows: (document.querySelector('#baseline ~ table')?.rows.length ?? 1) - 1,
    not_run_rows: rows('not-run'),
    sections: q('section').length,
    results: q('section h4[id]').map((h) => [h.id, h.querySelector('.verdict')?.textContent ?? '']),
    svgs: q('section svg').map((s) => {
      const b = s.getBoundingClientRect();
      return [b.width, b.height, s.querySelectorAll('*').length];
    }),
    images: q('img').map((i) => [i.complete, i.naturalWidth, i.naturalHeight, i.src.slice(0, 22)]),
    broken_anchors: q('a[href^="#"]').map((a) => a.getAttribute('href'))
      .filter((h) => !document.getElementById(h.slice(1))),
    // What sticks out on the right: for a table, its longest text that cannot wrap (and the
    // row it is in); otherwise the innermost elements.
    overflowing: (() => {
      const out = (e) => e.getBoundingClientRect().right > window.innerWidth + 1;
      const tables = q('table').filter(out).slice(0, 3).map((t) => {
        let best = '', row = '';
        const walk = document.createTreeWalker(t, NodeFilter.SHOW_TEXT);
        for (let n = walk.nextNode(); n; n = walk.nextNode()) {
          const cs = getComputedStyle(n.parentElement);
          if (cs.wordBreak === 'break-all' || cs.overflowWrap === 'anywhere') continue;
          for (const w of n.textContent.split(/\s+/)) {
            if (w.length > best.length) { best = w; row = n.parentElement.closest('tr')?.querySelector('th')?.textContent ?? ''; }
          }
        }
        return `table (right edge ${Math.round(t.getBoundingClientRect().right)} px), longest unbreakable text `
          + `(${best.length} chars, row "${row}"): ${best.slice(0, 100)}`;
      });
      return tables.length ? tables : q('body *').filter(out)
        .filter((e) => !Array.from(e.children).some(out)).slice(0, 5)
        .map((e) => `${e.tagName.toLowerCase()} (right edge ${Math.round(e.getBoundingClientRect().right)} px): `
          + (e.textContent ?? '').trim().slice(0, 100));
    })(),
    scroll_width: document.documentElement.scrollWidth,
    inner_width: window.innerWidth,
  });
})()"##;

fn verdict_label(a: &Value) -> String {
    let v = a["verdict"]
        .as_str()
        .unwrap()
        .to_uppercase()
        .replace('-', " ");
    if !a["ignored"].is_null() {
        format!("{v} (ignored)")
    } else {
        v
    }
}

/// The rendered page against report.json.
fn check_rendering(tab: &Tab, report: &Value) {
    let facts = tab.evaluate(PAGE_FACTS, false).unwrap();
    let facts: Value = match facts.value {
        Some(Value::String(s)) => serde_json::from_str(&s).unwrap(),
        other => panic!(
            "page facts script failed: {other:?} {:?}",
            facts.description
        ),
    };
    let audits = report["audits"].as_array().unwrap();
    let evaluated: Vec<(usize, &Value)> = audits
        .iter()
        .enumerate()
        .filter(|(_, a)| a["verdict"] != "not-run" && !a["claim"].is_null())
        .collect();
    assert!(!evaluated.is_empty(), "the fixture run evaluated no audit");

    assert!(
        facts["title"]
            .as_str()
            .unwrap()
            .starts_with("xaudit report"),
        "{}",
        facts["title"]
    );
    let banner = facts["banner"].as_str().unwrap();
    let gate = match report["exit_code"].as_i64().unwrap() {
        0 => "PASSED",
        1 => "FAILED",
        _ => "ERROR",
    };
    assert!(
        banner.contains(&format!("Gate {gate}"))
            && banner.contains(&format!("exit code {}", report["exit_code"])),
        "banner {banner:?} for verdict {}",
        report["verdict"]
    );

    assert_eq!(facts["summary_rows"], evaluated.len(), "summary table rows");
    let compared = audits.iter().filter(|a| !a["regression"].is_null()).count();
    assert!(
        compared > 0,
        "the fixture run compared nothing with its baseline"
    );
    assert_eq!(facts["baseline_rows"], compared, "baseline table rows");
    let codes: BTreeSet<&str> = evaluated
        .iter()
        .map(|(_, a)| a["code"].as_str().unwrap())
        .collect();
    assert_eq!(facts["sections"], codes.len(), "one section per audit");
    let shown: Vec<(String, String)> = serde_json::from_value(facts["results"].clone()).unwrap();
    let want: Vec<(String, String)> = evaluated
        .iter()
        .map(|(k, a)| (format!("r{k}"), verdict_label(a)))
        .collect();
    let mut shown_sorted = shown.clone();
    shown_sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(
        shown_sorted, want_sorted,
        "per-result headings and verdicts"
    );
    let not_run = audits
        .iter()
        .filter(|a| a["verdict"] == "not-run" || a["claim"].is_null() || !a["ignored"].is_null())
        .count();
    assert_eq!(facts["not_run_rows"], not_run, "audits not run or ignored");
    assert_eq!(facts["broken_anchors"], json!([]), "in-page links");

    // Charts: a histogram per result with per-image values, plus its curves.
    let charts: usize = evaluated
        .iter()
        .map(|(_, a)| {
            let values = a["per_sample"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| !s["value"].is_null()));
            let paired = a["regression"]["pairs"]
                .as_array()
                .is_some_and(|p| !p.is_empty());
            usize::from(values) + usize::from(paired) + a["curves"].as_array().map_or(0, Vec::len)
        })
        .sum();
    let svgs = facts["svgs"].as_array().unwrap();
    assert!(charts > 0, "the fixture run has no charts");
    assert_eq!(svgs.len(), charts, "inline SVG charts");
    for s in svgs {
        assert!(
            s[0].as_f64().unwrap() > 100.0
                && s[1].as_f64().unwrap() > 100.0
                && s[2].as_u64().unwrap() > 10,
            "an SVG chart rendered empty or collapsed: {s}"
        );
    }
    // Example images: every panel of every best/worst example, decoded.
    let panels: usize = evaluated
        .iter()
        .flat_map(|(_, a)| a["examples"].as_array().into_iter().flatten())
        .map(|e| e["panels"].as_array().map_or(0, Vec::len))
        .sum();
    let images = facts["images"].as_array().unwrap();
    assert!(panels > 0, "the fixture run has no example images");
    assert_eq!(images.len(), panels, "example images");
    for i in images {
        assert!(
            i[0] == true && i[1].as_u64().unwrap() > 0 && i[2].as_u64().unwrap() > 0,
            "an image did not decode: {i}"
        );
        assert_eq!(i[3], "data:image/png;base64,", "image source");
    }
    assert!(
        facts["scroll_width"].as_u64().unwrap() <= facts["inner_width"].as_u64().unwrap(),
        "the page overflows horizontally at {WIDTH} px ({} px wide): {:#}",
        facts["scroll_width"],
        facts["overflowing"]
    );
}

/// PNG screenshot of the page's top `height` CSS pixels (None: the full page), at least
/// 1280 px wide, checked to decode and not to be blank; written to `path`.
fn screenshot(tab: &Tab, height: Option<f64>, path: &Path) {
    let m = tab
        .call_method(Page::GetLayoutMetrics(None))
        .expect("layout metrics");
    let w = m.css_content_size.width.max(f64::from(WIDTH)).ceil();
    let full = m.css_content_size.height.ceil();
    let h = height.map_or(full, |h| h.min(full).ceil());
    let shot = tab
        .call_method::<Page::CaptureScreenshot>(cdp(json!({
            "format": "png",
            "fromSurface": true,
            "captureBeyondViewport": true,
            "clip": { "x": 0, "y": 0, "width": w, "height": h, "scale": 1 },
        })))
        .expect("screenshot");
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot.data)
        .unwrap();
    let img = image::load_from_memory(&png)
        .expect("the screenshot decodes")
        .to_rgb8();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &png).unwrap();
    assert!(
        img.width() >= WIDTH && f64::from(img.height()) >= h - 1.0,
        "screenshot {}×{} of the page's {w}×{h} px",
        img.width(),
        img.height()
    );
    // Not blank: most pixels are the background, but text, tables, charts and images cover
    // a good part of the page in many colours.
    let mut counts = std::collections::HashMap::new();
    for p in img.pixels() {
        *counts.entry(p.0).or_insert(0u64) += 1;
    }
    let total = u64::from(img.width()) * u64::from(img.height());
    let background = counts.values().copied().max().unwrap();
    let ink = 1.0 - background as f64 / total as f64;
    eprintln!(
        "screenshot {}×{} ({} KiB, {} colours, {:.0}% non-background) -> {}",
        img.width(),
        img.height(),
        png.len() / 1024,
        counts.len(),
        100.0 * ink,
        path.display()
    );
    assert!(
        counts.len() > 200 && ink > 0.03,
        "the screenshot looks blank: {} colours, {:.1}% non-background",
        counts.len(),
        100.0 * ink
    );
}

#[test]
fn html_report_renders_in_chromium_without_errors_or_requests() {
    let t = Instant::now();
    let (html, report) = fixture_report();
    let text = std::fs::read_to_string(html).unwrap();
    let refs = static_resource_refs(&text);
    assert!(
        refs.is_empty(),
        "report.html references resources: {refs:?}"
    );
    assert!(
        text.len() < 2 << 20,
        "report.html is {} bytes; the example must stay small",
        text.len()
    );

    let browser = launch();
    eprintln!(
        "browser: {}",
        browser.get_version().map(|v| v.product).unwrap_or_default()
    );
    let (tab, rec, url) = load(&browser, html);
    rec.print("report.html");
    // Screenshots first, so a failure below leaves the picture of what failed.
    let out = outputs();
    screenshot(&tab, None, &out.full_screenshot);
    if let Some(example) = &out.example_screenshot {
        // The example stays small: the cover, the summary and the first audit result down to
        // its first chart.
        let first_chart = tab
            .evaluate(
                "(() => { const c = document.querySelector('section figure'); return c ? c.getBoundingClientRect().bottom + window.scrollY + 16 : 4000; })()",
                false,
            )
            .unwrap()
            .value
            .and_then(|v| v.as_f64())
            .unwrap_or(4000.0);
        screenshot(&tab, Some(first_chart.min(4000.0)), example);
    }
    let problems = rec.problems(&url);
    assert!(
        problems.is_empty(),
        "report.html in Chromium:\n  {}",
        problems.join("\n  ")
    );
    assert!(
        rec.urls.contains(&url),
        "the report itself was not recorded as a request: {:?}",
        rec.requests
    );
    check_rendering(&tab, report);
    eprintln!("browser test: {:.1} s", t.elapsed().as_secs_f64());
}

/// The detection can fail: a copy of the report with a console.error, an uncaught exception
/// and a remote image (blocked, and unreachable anyway: it still counts) is caught by every
/// line of defence.
#[test]
fn injected_console_error_exception_and_remote_image_are_caught() {
    let (html, _) = fixture_report();
    let text = std::fs::read_to_string(html).unwrap();
    let injected = text.replacen(
        "</body>",
        "<script>console.error('x')</script><img src=\"https://example.com/x.png\">\
         <script>throw new Error('injected-uncaught')</script></body>",
        1,
    );
    assert_ne!(injected, text);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("report.html");
    std::fs::write(&copy, &injected).unwrap();

    let refs = static_resource_refs(&injected);
    assert!(
        refs.iter().any(|r| r.contains("https://example.com/x.png")),
        "{refs:?}"
    );

    let browser = launch();
    let (_tab, rec, url) = load(&browser, &copy);
    rec.print("report.html with injected defects");
    assert!(
        rec.console.iter().any(|(k, t)| k == "error" && t == "x"),
        "console.error not recorded: {:?}",
        rec.console
    );
    assert!(
        rec.exceptions
            .iter()
            .any(|e| e.contains("injected-uncaught")),
        "exception not recorded: {:?}",
        rec.exceptions
    );
    assert!(
        rec.urls.contains("https://example.com/x.png"),
        "remote image request not recorded: {:?}",
        rec.requests
    );
    let problems = rec.problems(&url);
    for needle in [
        "console.error: x",
        "injected-uncaught",
        "request other than the report and data: URLs: https://example.com/x.png",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{needle:?} not among the problems: {problems:#?}"
        );
    }
}

#[test]
fn static_check_flags_remote_resources_only() {
    for bad in [
        "<img src=\"https://example.com/x.png\">",
        "<img src='http://example.com/x.png'>",
        "<img src=//cdn.example.com/x.png>",
        "<img srcset=\"data:image/png;base64,AA 1x, https://e.com/x.png 2x\">",
        "<link rel=\"stylesheet\" href=\"https://cdn.example.com/a.css\">",
        "<script src=\"https://cdn.example.com/a.js\"></script>",
        "<style>@import url(\"https://fonts.example.com/a.css\");</style>",
        "<style>body { background: url( 'https://e.com/bg.png' ) }</style>",
        "<div style=\"background:url(http://e.com/bg.png)\"></div>",
        "<svg><image xlink:href=\"https://e.com/x.png\"/></svg>",
        "<iframe src=\"https://e.com/\"></iframe>",
        "<script>fetch('https://e.com/beacon')</script>",
    ] {
        let page = format!("<!DOCTYPE html><html><body><p>a</p>{bad}</body></html>");
        assert!(!static_resource_refs(&page).is_empty(), "missed: {bad}");
    }
    let good = "<!DOCTYPE html><html><head><style>.a { color: red; } td > b { x: url(#g) }</style></head>\
        <body><svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1 1\"><use href=\"#g\"/></svg>\
        <a href=\"https://doi.org/10.1000/x\">https://doi.org/10.1000/x</a><a href=\"#summary\">s</a>\
        <img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"a > b\"><p>see http://example.com</p></body></html>";
    assert_eq!(static_resource_refs(good), Vec::<String>::new());
}
