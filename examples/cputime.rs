//! cputime: runs a command and appends the CPU time it took to a file, for `bench/brocapi.sh`.
//!
//! The bench wraps the analyzer command of both pipelines in it, so that a pipeline's own CPU
//! (everything but the analyzer) is the CPU of its long-lived processes, read from /proc before
//! and after a run, minus what cputime recorded. /proc gives whole clock ticks and a shell's
//! `times` as little as 10 ms per job; this reads `getrusage`, whose user + system sum is the
//! scheduler's exact run time, in microseconds.
//!
//! Appends one line per run, written with one `write` on an O_APPEND file so concurrent runs do
//! not interleave: `CHILD_US SELF_US EXIT` (the command's CPU including its children, cputime's
//! own CPU, the exit code or 128 + signal). Exits with the command's code.
//!
//! ```text
//! cputime ACCT_FILE COMMAND [ARG...]
//! ```

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

fn usage_us(who: libc::c_int) -> u64 {
    // SAFETY: rusage is plain data (all zeroes is valid) and getrusage only writes into it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: cputime ACCT_FILE COMMAND [ARG...]");
        std::process::exit(2);
    }
    let status = match Command::new(&args[1]).args(&args[2..]).status() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("cputime: cannot run {:?}: {e}", args[1]);
            std::process::exit(127);
        }
    };
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    let line = format!(
        "{} {} {code}\n",
        usage_us(libc::RUSAGE_CHILDREN),
        usage_us(libc::RUSAGE_SELF)
    );
    match OpenOptions::new().create(true).append(true).open(&args[0]) {
        Ok(mut file) => {
            if let Err(e) = file.write_all(line.as_bytes()) {
                eprintln!("cputime: {:?}: {e}", args[0]);
            }
        }
        Err(e) => eprintln!("cputime: {:?}: {e}", args[0]),
    }
    std::process::exit(code);
}
