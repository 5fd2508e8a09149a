//! Process exit codes, one list for every command, the worker and the daemon (sysexits.h
//! values where one fits). `docs/operations.md` documents them for operators and systemd's
//! `RestartPreventExitStatus=`.

/// Success.
pub const EXIT_OK: i32 = 0;
/// A runtime failure: the daemon could not run, a client call failed, a worker's stream broke.
pub const EXIT_FAILURE: i32 = 1;
/// A waited-for job ended other than `done` (failed, timed out, cancelled).
pub const EXIT_JOB_NOT_DONE: i32 = 3;
/// `wait --timeout`: the time ran out and the job has not ended yet (EX_TEMPFAIL: ask again).
pub const EXIT_STILL_PENDING: i32 = 75;
/// A bad configuration or usage (EX_USAGE); systemd must not restart on it.
pub const EXIT_CONFIG: i32 = 64;
/// `pcapd analyze`: a capture could not be read (EX_DATAERR).
pub const EXIT_BAD_INPUT: i32 = 65;
/// A worker cannot start for a reason a restart will not fix (bad settings, missing analyzer
/// binary; EX_CONFIG). The pool backs its slot off instead of respawning it at once.
pub const EXIT_CANNOT_START: i32 = 78;
