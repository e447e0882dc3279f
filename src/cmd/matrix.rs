//! `sharecheck matrix`: one compatibility matrix from several `sharecheck conform --json` reports —
//! cases × targets, grouped by area, each cell the case's verdict there, with the finding a
//! baseline names for it and a link to its artifact (`conformance::report::matrix`).

use crate::cmd::conform::write_output;
use crate::exit::{CmdResult, Fail, Outcome};
use clap::Args;
use sharecheck_conformance::report::baseline::Baseline;
use sharecheck_conformance::report::matrix::{totals_text, Column, Matrix};
use sharecheck_conformance::scenario;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `sharecheck matrix`.
#[derive(Args, Debug)]
pub struct MatrixArgs {
    /// JSON reports of `sharecheck conform --json`, each `FILE` or `LABEL=FILE` (the column's
    /// heading; default: the target's implementation and address).
    #[arg(required = true, value_name = "[LABEL=]FILE")]
    pub reports: Vec<String>,
    /// A baseline for the column labelled LABEL: its cases' findings are shown in their cells.
    #[arg(long = "baseline", value_name = "LABEL=FILE")]
    pub baselines: Vec<String>,
    /// Directory for matrix.html, matrix.md and matrix.json (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

fn split_label(arg: &str) -> (Option<&str>, &str) {
    match arg.split_once('=') {
        Some((label, file)) if !label.is_empty() && !file.is_empty() => (Some(label), file),
        _ => (None, arg),
    }
}

fn read(path: &Path) -> Result<String, Fail> {
    std::fs::read_to_string(path)
        .map_err(|e| Fail::no_input(format!("cannot read {}: {e}", path.display())))
}

/// `target` as a path relative to the directory `base` (both absolute).
fn relative_to(base: &Path, target: &Path) -> PathBuf {
    let (b, t): (Vec<_>, Vec<_>) = (base.components().collect(), target.components().collect());
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

pub fn run(args: MatrixArgs) -> CmdResult {
    let known: Vec<String> = scenario::catalog()
        .map_err(|e| Fail::malformed(e.to_string()))?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let mut baselines: BTreeMap<String, Baseline> = BTreeMap::new();
    for b in &args.baselines {
        let (Some(label), file) = split_label(b) else {
            return Err(Fail::usage(format!(
                "--baseline {b}: expected LABEL=FILE (LABEL as given to one report)"
            )));
        };
        let baseline = Baseline::load(Path::new(file), &known)
            .map_err(|e| Fail::malformed(format!("baseline {e}")))?;
        baselines.insert(label.to_string(), baseline);
    }
    let mut columns = Vec::new();
    for r in &args.reports {
        let (label, file) = split_label(r);
        let text = read(Path::new(file))?;
        let baseline = label.and_then(|l| baselines.get(l));
        let column = Column::from_report(&text, file, label, baseline)
            .map_err(|e| Fail::malformed(e.to_string()))?;
        columns.push(column);
    }
    if let Some(l) = baselines
        .keys()
        .find(|l| !columns.iter().any(|c| &c.label == *l))
    {
        return Err(Fail::usage(format!(
            "--baseline {l}=…: no report is labelled {l}"
        )));
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Fail::cannot_write(format!("cannot create {}: {e}", args.out.display())))?;
    // Artifact paths in a report are relative to where `conform` ran (taken to be here): the page's
    // links are made relative to the page.
    if let (Ok(here), Ok(out)) = (std::env::current_dir(), args.out.canonicalize()) {
        for c in &mut columns {
            for cell in c.cells.values_mut() {
                if let Some(a) = cell.artifact.as_mut() {
                    *a = relative_to(&out, &here.join(&*a)).display().to_string();
                }
            }
        }
    }
    let matrix = Matrix::new(columns);
    let json = serde_json::to_string_pretty(&matrix.json())
        .map_err(|e| Fail::cannot_write(format!("cannot encode the matrix: {e}")))?;
    write_output(&args.out.join("matrix.html"), &matrix.html())?;
    write_output(&args.out.join("matrix.md"), &matrix.markdown())?;
    write_output(&args.out.join("matrix.json"), &json)?;
    println!(
        "matrix: {} case(s) × {} target(s) in {}",
        matrix.rows.len(),
        matrix.columns.len(),
        args.out.join("matrix.html").display()
    );
    for (c, t) in matrix.columns.iter().zip(matrix.totals()) {
        println!("  {}: {}", c.label, totals_text(t));
    }
    Ok(Outcome::Pass)
}
