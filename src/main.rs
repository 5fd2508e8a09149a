//! `pcapd`: parses the command line, runs the command, maps errors to exit codes.

use clap::Parser;
use pcapd::cli::{self, Cli};

fn main() {
    let cli = Cli::parse();
    let code = cli::run(cli);
    std::process::exit(code);
}
