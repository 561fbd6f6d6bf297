//! The `segfn` command line: build, run and demo translation functions.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
