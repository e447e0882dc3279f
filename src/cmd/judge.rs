//! `sharecheck judge FILE`: judge a recorded history again, with no broker — the same oracle, the
//! same verdicts and exit codes as the run that recorded it (or other rules, with `--profile`).
//!
//! FILE is an artifact of `conform`, `fuzz` or `replay` (a case with its `history`), or a bare
//! history. Exit codes: 0 pass, 1 fail, 2 inconclusive, 3 the case was skipped on its target,
//! 65 the file is not a usable history, 66 it cannot be read, 64 bad flags.

use crate::cmd::conform::case_outcome;
use crate::cmd::target::profile_arg;
use crate::exit::{CmdResult, Fail};
use clap::Args;
use sharecheck_conformance::history;
use sharecheck_conformance::oracle;
use sharecheck_conformance::report::text;
use std::path::PathBuf;

/// `sharecheck judge`.
#[derive(Args, Debug)]
pub struct JudgeArgs {
    /// A history file: an artifact (a trace with its recorded history) or a bare history.
    pub file: PathBuf,
    /// Judge by these rules instead of the ones the history was recorded under.
    #[arg(long)]
    pub profile: Option<String>,
    /// Print the judgement as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: JudgeArgs) -> CmdResult {
    let profile = profile_arg(args.profile.as_deref())?;
    let (case, stored) = history::load(&args.file).map_err(Fail::input)?;
    let j = oracle::judge(&stored.events, profile)
        .map_err(|e| Fail::malformed(format!("{}: history: {e}", args.file.display())))?;
    let id = case.as_ref().map_or("(a bare history)", |c| c.id.as_str());
    if args.json {
        let value = serde_json::json!({
            "format_version": history::HISTORY_FORMAT_VERSION,
            "id": id,
            "target": stored.target,
            "verdict": j.verdict,
            "anomalies": j.anomalies,
            "reason": j.reason,
            "notes": j.notes,
            "steps": j.steps,
            "recorded": stored.recorded,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        println!(
            "judge {id}: {} events recorded on {} ({})",
            stored.events.len(),
            stored.target.address,
            stored.target.implementation
        );
        print!("{}", text::steps(&j.steps, &j.anomalies, &j.notes));
        println!();
        if let Some(r) = &stored.recorded {
            let same = r.verdict == j.verdict && r.anomalies == j.anomalies;
            println!(
                "recorded: {:?}{}",
                r.verdict,
                if same {
                    " (judged the same now)"
                } else {
                    " (judged differently now)"
                }
            );
        }
        println!(
            "{}",
            text::verdict_line(j.verdict, &j.anomalies, j.reason.as_deref(), None)
        );
    }
    case_outcome(j.verdict, j.reason.as_deref())
}
