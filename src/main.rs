//! The `xaudit` command line. Errors surface here through anyhow; every failure exits 2
//! with a message naming the file and the fix (Rust's panic exit code 101 means a bug).
mod cli;

use clap::Parser;

fn main() {
    // Before libtorch allocates anything.
    xaudit::alloc::tune();
    let args = cli::Cli::parse();
    xaudit::interrupt::install();
    match cli::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let interrupted = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<xaudit::Error>(),
                    Some(xaudit::Error::Interrupted)
                )
            });
            eprintln!("error: {e:#}");
            // 130: stopped by Ctrl-C / SIGTERM, as shells report SIGINT.
            std::process::exit(if interrupted { 130 } else { 2 });
        }
    }
}
