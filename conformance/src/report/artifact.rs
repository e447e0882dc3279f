//! Artifacts: what a failed or inconclusive case leaves behind — its trace with the recorded
//! history (which `sharecheck judge FILE` judges again and `sharecheck replay FILE` reruns).

use crate::run::CaseResult;
use crate::target::Target;
use crate::trace::Case;
use std::path::{Path, PathBuf};

/// Writes the artifact of one case: the case with its history and the recorded verdict.
pub fn write(dir: &Path, result: &CaseResult, target: &Target) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{}.json", result.id));
    let mut case: Case = result.case.clone();
    case.history = Some(result.stored_history(target));
    let mut text = case.to_json();
    text.push('\n');
    std::fs::write(&path, text)?;
    Ok(path)
}
