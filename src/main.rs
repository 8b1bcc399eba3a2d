//! The `xaudit` command line. Errors surface here through anyhow; every failure exits 2
//! with a message naming the file and the fix (Rust's panic exit code 101 means a bug).
mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
