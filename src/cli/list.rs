//! `xaudit list`: audits, suites and methods.
use anyhow::Result;
use xaudit::attribution::MethodKind;
use xaudit::audit::REGISTRY;
use xaudit::suite::{Suite, BUILT_IN};

pub fn run() -> Result<()> {
    outln!("Audits (`xaudit docs CODE` for details):");
    for a in REGISTRY {
        outln!(
            "  {}  {:<26} {:<10} {}",
            a.doc.code,
            a.doc.name,
            a.family,
            a.doc.title
        );
    }
    outln!("\nSuites:");
    for (name, _) in BUILT_IN {
        let s = Suite::load(name)?;
        let audits: Vec<String> = s
            .gates
            .iter()
            .map(|g| {
                let role = if g.prerequisite {
                    " (prerequisite)"
                } else if g.advisory {
                    " (advisory)"
                } else {
                    ""
                };
                format!("{}{role}", g.entry.doc.name)
            })
            .collect();
        outln!(
            "  {:<11} {}\n              audits: {}",
            name,
            s.description,
            audits.join(", ")
        );
    }
    outln!("\nMethods:");
    for m in MethodKind::ALL {
        outln!("  {:<21} {}", m.name(), m.summary());
    }
    Ok(())
}
