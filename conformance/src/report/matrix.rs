//! The compatibility matrix (`sharecheck matrix`): cases × targets from several JSON reports of
//! `sharecheck conform`, grouped by area, each cell the case's verdict on that target — with the
//! anomalies or the reason, the finding a baseline gives for it, and a link to its artifact — as one
//! self-contained HTML file (no script, no network), Markdown, and JSON.

use crate::report::baseline::Baseline;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// One column: a target's report, and optionally its baseline.
#[derive(Clone, Debug)]
pub struct Column {
    /// The column's heading.
    pub label: String,
    /// What the report says the target is.
    pub implementation: String,
    /// The report's run verdict.
    pub verdict: String,
    /// case id → cell.
    pub cells: BTreeMap<String, Cell>,
    /// case id → (area, level), as the report gives them.
    pub meta: BTreeMap<String, (String, String)>,
}

/// One case on one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// pass / fail / inconclusive / skipped.
    pub verdict: String,
    /// The anomaly kinds, or the reason it was skipped or inconclusive.
    pub detail: String,
    /// The finding a baseline names for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    /// The artifact file, for failed and inconclusive cases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// The command that runs the case again on that target (absent from reports written before it was added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun: Option<String>,
}

/// A row: one case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Case id.
    pub id: String,
    /// Its area.
    pub area: String,
    /// must / should.
    pub level: String,
}

/// The matrix.
#[derive(Clone, Debug)]
pub struct Matrix {
    /// The targets, in the order given.
    pub columns: Vec<Column>,
    /// Every case any report has, by area then id.
    pub rows: Vec<Row>,
}

/// A report that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct MatrixError {
    /// Which report.
    pub origin: String,
    /// What is wrong.
    pub message: String,
}

fn field<'a>(v: &'a Value, key: &str, origin: &str) -> Result<&'a Value, MatrixError> {
    v.get(key).ok_or_else(|| MatrixError {
        origin: origin.to_string(),
        message: format!("not a sharecheck conform report: no \"{key}\""),
    })
}

fn text(v: &Value, key: &str, origin: &str) -> Result<String, MatrixError> {
    field(v, key, origin)?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| MatrixError {
            origin: origin.to_string(),
            message: format!("\"{key}\" is not a string"),
        })
}

impl Column {
    /// A column from a conform report's JSON (`origin` names it in errors), labelled `label` or, by
    /// default, by the target's implementation and address; `baseline` adds each listed case's
    /// finding.
    pub fn from_report(
        json: &str,
        origin: &str,
        label: Option<&str>,
        baseline: Option<&Baseline>,
    ) -> Result<Column, MatrixError> {
        let bad = |message: String| MatrixError {
            origin: origin.to_string(),
            message,
        };
        let v: Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        if v.get("tool").and_then(Value::as_str) != Some("sharecheck") {
            return Err(bad(
                "not a sharecheck conform report (no \"tool\": \"sharecheck\")".into(),
            ));
        }
        let target = field(&v, "target", origin)?;
        let implementation = text(target, "implementation", origin)?;
        let address = text(target, "address", origin)?;
        let verdict = text(&v, "verdict", origin)?;
        let cases = field(&v, "cases", origin)?
            .as_array()
            .ok_or_else(|| bad("\"cases\" is not an array".into()))?;
        let mut cells = BTreeMap::new();
        let mut meta = BTreeMap::new();
        for c in cases {
            let id = text(c, "id", origin)?;
            meta.insert(
                id.clone(),
                (text(c, "area", origin)?, text(c, "level", origin)?),
            );
            let verdict = text(c, "verdict", origin)?;
            let kinds: Vec<String> = c
                .get("anomalies")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.get("kind").and_then(Value::as_str).map(str::to_string))
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect()
                })
                .unwrap_or_default();
            let detail = if kinds.is_empty() {
                c.get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            } else {
                kinds.join(", ")
            };
            let finding = baseline
                .and_then(|b| b.cases.get(&id))
                .map(|e| e.finding.clone());
            let artifact = c
                .get("artifact")
                .and_then(Value::as_str)
                .map(str::to_string);
            let rerun = c.get("rerun").and_then(Value::as_str).map(str::to_string);
            cells.insert(
                id,
                Cell {
                    verdict,
                    detail,
                    finding,
                    artifact,
                    rerun,
                },
            );
        }
        let label = label.map_or_else(|| format!("{implementation} ({address})"), str::to_string);
        Ok(Column {
            label,
            implementation,
            verdict,
            cells,
            meta,
        })
    }
}

impl Matrix {
    /// The matrix of `columns`: a row for every case any report has, with the area and level the
    /// first report that has it gives.
    pub fn new(columns: Vec<Column>) -> Matrix {
        let mut meta: BTreeMap<&String, &(String, String)> = BTreeMap::new();
        for c in &columns {
            for (id, m) in &c.meta {
                meta.entry(id).or_insert(m);
            }
        }
        let mut rows: Vec<Row> = meta
            .into_iter()
            .map(|(id, (area, level))| Row {
                id: id.clone(),
                area: area.clone(),
                level: level.clone(),
            })
            .collect();
        rows.sort_by(|a, b| (&a.area, &a.id).cmp(&(&b.area, &b.id)));
        Matrix { columns, rows }
    }

    /// Per column: (pass, fail, inconclusive, skipped, not run).
    pub fn totals(&self) -> Vec<[usize; 5]> {
        self.totals_where(|_| true)
    }

    /// Per column, over the rows `keep` selects: (pass, fail, inconclusive, skipped, not run).
    fn totals_where(&self, keep: impl Fn(&Row) -> bool) -> Vec<[usize; 5]> {
        self.columns
            .iter()
            .map(|c| {
                let mut t = [0usize; 5];
                for r in self.rows.iter().filter(|r| keep(r)) {
                    let k = match c.cells.get(&r.id).map(|x| x.verdict.as_str()) {
                        Some("pass") => 0,
                        Some("fail") => 1,
                        Some("inconclusive") => 2,
                        Some("skipped") => 3,
                        _ => 4,
                    };
                    t[k] += 1;
                }
                t
            })
            .collect()
    }

    /// One self-contained HTML page.
    pub fn html(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>sharecheck compatibility matrix</title>\n<style>\n\
             body{font:14px system-ui,sans-serif;margin:1.5em}\
             table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 6px;text-align:left}\
             th{background:#f4f4f4;position:sticky;top:0}td.area{background:#eef;font-weight:bold}\
             .pass{background:#d9f2d9}.fail{background:#f7c6c6}.inconclusive{background:#fbe7b5}\
             .skipped{background:#eee;color:#666}.none{background:#fff;color:#aaa}\
             small{color:#555}\n</style></head><body>\n<h1>sharecheck compatibility matrix</h1>\n",
        );
        out.push_str("<table>\n<tr><th>case</th><th>level</th>");
        for c in &self.columns {
            let _ = write!(
                out,
                "<th title=\"{}\">{}<br><small>run: {}</small></th>",
                esc(&c.implementation),
                esc(&c.label),
                esc(&c.verdict)
            );
        }
        out.push_str("</tr>\n<tr><td>totals</td><td></td>");
        for t in self.totals() {
            let _ = write!(out, "<td>{}</td>", totals_text(t));
        }
        out.push_str("</tr>\n");
        let mut area = "";
        for r in &self.rows {
            if r.area != area {
                area = &r.area;
                let _ = writeln!(
                    out,
                    "<tr><td class=\"area\" colspan=\"{}\">{}</td></tr>",
                    self.columns.len() + 2,
                    esc(area)
                );
            }
            let _ = write!(out, "<tr><td>{}</td><td>{}</td>", esc(&r.id), esc(&r.level));
            for c in &self.columns {
                match c.cells.get(&r.id) {
                    None => out.push_str("<td class=\"none\">not run</td>"),
                    Some(cell) => {
                        let mut body = esc(&cell.verdict);
                        if let Some(f) = &cell.finding {
                            let _ = write!(body, " ({})", esc(f));
                        }
                        if let Some(a) = &cell.artifact {
                            body = format!("<a href=\"{}\">{body}</a>", esc(a));
                        }
                        let class = match cell.verdict.as_str() {
                            "pass" | "fail" | "inconclusive" | "skipped" => cell.verdict.as_str(),
                            _ => "none",
                        };
                        let mut title = cell.detail.clone();
                        if let Some(r) = &cell.rerun {
                            if !title.is_empty() {
                                title.push('\n');
                            }
                            let _ = write!(title, "rerun: {r}");
                        }
                        let _ = write!(
                            out,
                            "<td class=\"{class}\" title=\"{}\">{body}</td>",
                            esc(&title)
                        );
                    }
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n</body></html>\n");
        out
    }

    /// The head of a Markdown table: two leading columns, then one per target.
    fn markdown_header(&self, first: &str, second: &str) -> String {
        let mut out = format!("| {first} | {second} |");
        for c in &self.columns {
            let _ = write!(out, " {} |", md(&c.label));
        }
        out.push_str("\n|---|---|");
        for _ in &self.columns {
            out.push_str("---|");
        }
        out.push('\n');
        out
    }

    /// A Markdown table per area: for each target pass / fail / inconclusive / skipped, and the
    /// findings its baseline names there (the summary the README shows).
    pub fn markdown_by_area(&self) -> String {
        let mut out = self.markdown_header("area", "cases");
        let areas: BTreeSet<&str> = self.rows.iter().map(|r| r.area.as_str()).collect();
        let all = self.totals();
        for area in areas.iter().map(|a| Some(*a)).chain([None]) {
            let keep = |r: &Row| area.is_none_or(|a| r.area == a);
            let n = self.rows.iter().filter(|r| keep(r)).count();
            match area {
                Some(a) => {
                    let _ = write!(out, "| {} | {n} |", md(a));
                }
                None => {
                    let _ = write!(out, "| **all** | {n} |");
                }
            }
            let totals = if area.is_none() {
                all.clone()
            } else {
                self.totals_where(keep)
            };
            for (c, t) in self.columns.iter().zip(totals) {
                let findings: BTreeSet<&str> = self
                    .rows
                    .iter()
                    .filter(|r| keep(r))
                    .filter_map(|r| c.cells.get(&r.id)?.finding.as_deref())
                    .collect();
                let mut cell = format!("{} / {} / {} / {}", t[0], t[1], t[2], t[3]);
                if t[4] > 0 {
                    let _ = write!(cell, " ({} not run)", t[4]);
                }
                if !findings.is_empty() && area.is_some() {
                    let _ = write!(
                        cell,
                        " {}",
                        findings.into_iter().collect::<Vec<_>>().join(" ")
                    );
                }
                let _ = write!(out, " {} |", md(&cell));
            }
            out.push('\n');
        }
        out
    }

    /// The Markdown page: the summary by area, then a row per case (its verdicts and findings).
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "# sharecheck compatibility matrix\n\nCells: pass / fail / inconclusive / skipped, and the \
             findings the targets' baselines name.\n\n## By area\n\n",
        );
        out.push_str(&self.markdown_by_area());
        out.push_str("\n## Every case\n\n");
        out.push_str(&self.markdown_cases());
        out
    }

    /// A Markdown table with a row per case (the cells' verdicts and findings).
    fn markdown_cases(&self) -> String {
        let mut out = self.markdown_header("case", "level");
        out.push_str("| **totals** | |");
        for t in self.totals() {
            let _ = write!(out, " {} / {} / {} / {} |", t[0], t[1], t[2], t[3]);
        }
        out.push('\n');
        for r in &self.rows {
            let _ = write!(out, "| {} | {} |", md(&r.id), md(&r.level));
            for c in &self.columns {
                let cell = c.cells.get(&r.id).map_or_else(
                    || "not run".to_string(),
                    |x| match &x.finding {
                        Some(f) => format!("{} ({f})", x.verdict),
                        None => x.verdict.clone(),
                    },
                );
                let _ = write!(out, " {} |", md(&cell));
            }
            out.push('\n');
        }
        out
    }

    /// The matrix as JSON: rows, and per column its label and cells.
    pub fn json(&self) -> Value {
        serde_json::json!({
            "format_version": 1,
            "rows": self.rows,
            "columns": self.columns.iter().map(|c| serde_json::json!({
                "label": c.label,
                "implementation": c.implementation,
                "verdict": c.verdict,
                "cells": c.cells,
            })).collect::<Vec<_>>(),
        })
    }
}

/// One column's totals in words: "3 pass, 1 fail, 0 inconclusive, 2 skipped[, 1 not run]".
pub fn totals_text(t: [usize; 5]) -> String {
    let mut s = format!(
        "{} pass, {} fail, {} inconclusive, {} skipped",
        t[0], t[1], t[2], t[3]
    );
    if t[4] > 0 {
        s.push_str(&format!(", {} not run", t[4]));
    }
    s
}

/// HTML-escaped text (element content and attribute values).
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Markdown table text: pipes and newlines escaped.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = r#"{"tool":"sharecheck","version":"0","target":{"address":"a:1","implementation":"X <1>"},
        "verdict":"fail","cases":[
          {"id":"kip932.ack.a","area":"ack","level":"must","verdict":"pass","anomalies":[],"artifact":null},
          {"id":"kip932.ack.b","area":"ack","level":"must","verdict":"fail","anomalies":[{"kind":"double-acquire","step":1,"detail":"d"}],"artifact":"art/b.json"}]}"#;

    #[test]
    fn cells_carry_verdicts_findings_and_links_and_text_is_escaped() {
        let b = Baseline::parse(
            r#"{"format_version":1,"target":"t","cases":{"kip932.ack.b":{"verdict":"fail","finding":"K9","why":"w"}}}"#,
            "b",
            &["kip932.ack.b".to_string()],
        )
        .unwrap();
        let c1 = Column::from_report(R, "r1", None, Some(&b)).unwrap();
        let c2 = Column::from_report(
            &R.replace(
                "\"fail\",\"anomalies\":[{",
                "\"pass\",\"anomalies\":[],\"x\":[{",
            ),
            "r2",
            Some("two"),
            None,
        )
        .unwrap();
        let m = Matrix::new(vec![c1, c2]);
        assert_eq!(m.rows.len(), 2);
        assert_eq!(m.totals(), vec![[1, 1, 0, 0, 0], [2, 0, 0, 0, 0]]);
        let html = m.html();
        assert!(html.contains("X &lt;1&gt; (a:1)"), "{html}");
        assert!(
            html.contains("<a href=\"art/b.json\">fail (K9)</a>"),
            "{html}"
        );
        assert!(html.contains("title=\"double-acquire\""));
        assert!(!html.contains("<script"));
        let md = m.markdown();
        assert!(
            md.contains("| kip932.ack.b | must | fail (K9) | pass |"),
            "{md}"
        );
        let by_area = m.markdown_by_area();
        assert!(
            by_area.contains("| ack | 2 | 1 / 1 / 0 / 0 K9 | 2 / 0 / 0 / 0 |"),
            "{by_area}"
        );
        assert!(
            by_area.contains("| **all** | 2 | 1 / 1 / 0 / 0 | 2 / 0 / 0 / 0 |"),
            "{by_area}"
        );
        assert!(
            md.contains("## By area") && md.contains("## Every case"),
            "{md}"
        );
        assert_eq!(m.json()["columns"][1]["label"], "two");
    }

    #[test]
    fn what_is_not_a_report_is_refused() {
        assert!(Column::from_report("{}", "x", None, None).is_err());
        assert!(Column::from_report("[", "x", None, None).is_err());
        assert!(Column::from_report(
            &R.replace("\"cases\":[", "\"cases\":{\"a\":[")
                .replace("]}", "]}}"),
            "x",
            None,
            None
        )
        .is_err());
    }
}
