//! Exit codes shared by every command (DESIGN.md, "Exit codes, every command").

use std::process::ExitCode;

/// The outcome of a command, mapped one-to-one onto the documented exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 0: everything checked holds.
    Pass,
    /// 1: a violation: a property failed, or a MUST case failed (SHOULD too with `--strict`).
    Violation,
    /// 2: no violation, but something was inconclusive.
    Inconclusive,
    /// 3: the target is unusable: unreachable, share groups disabled, unsupported API versions.
    TargetUnusable,
    /// 64: usage error (bad flags, zero selected cases).
    Usage,
    /// 65: malformed input file (trace, history, fixture).
    MalformedInput,
    /// 66: an input file does not exist or cannot be read.
    NoInput,
    /// 74: an output file (report, artifact, fixture) cannot be written.
    CannotWrite,
    /// 130: interrupted by SIGINT (after removing what the run made, unless `--keep`).
    Interrupted,
    /// 143: stopped by SIGTERM (likewise).
    Terminated,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Pass => 0,
            Outcome::Violation => 1,
            Outcome::Inconclusive => 2,
            Outcome::TargetUnusable => 3,
            Outcome::Usage => 64,
            Outcome::MalformedInput => 65,
            Outcome::NoInput => 66,
            Outcome::CannotWrite => 74,
            Outcome::Interrupted => 130,
            Outcome::Terminated => 143,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        ExitCode::from(o.code())
    }
}

/// An error that ends a command with a specific exit code and a one-line message on stderr.
#[derive(Debug)]
pub struct Fail {
    pub outcome: Outcome,
    pub message: String,
}

impl Fail {
    pub fn usage(message: impl Into<String>) -> Self {
        Fail {
            outcome: Outcome::Usage,
            message: message.into(),
        }
    }
    pub fn malformed(message: impl Into<String>) -> Self {
        Fail {
            outcome: Outcome::MalformedInput,
            message: message.into(),
        }
    }
    pub fn no_input(message: impl Into<String>) -> Self {
        Fail {
            outcome: Outcome::NoInput,
            message: message.into(),
        }
    }
    pub fn cannot_write(message: impl Into<String>) -> Self {
        Fail {
            outcome: Outcome::CannotWrite,
            message: message.into(),
        }
    }
    /// A trace or history file that could not be used: missing (66) or malformed (65).
    pub fn input(e: sharecheck_conformance::trace::TraceError) -> Self {
        match e {
            sharecheck_conformance::trace::TraceError::Io { .. } => Fail::no_input(e.to_string()),
            _ => Fail::malformed(e.to_string()),
        }
    }
    pub fn unusable(message: impl Into<String>) -> Self {
        Fail {
            outcome: Outcome::TargetUnusable,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What every command returns: an outcome to exit with, or a failure with a message.
pub type CmdResult = Result<Outcome, Fail>;
