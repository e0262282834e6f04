//! `sluice test`'s report for a person: each case passed or failed, each failure with where its
//! expectation is written and a diff.

use super::expect;
use super::outcome::Outcome;

/// Writes the outcome as a person reads it: each case passed or failed, each failure with where
/// its expectation is written and a diff, then the totals.
pub fn render(outcome: &Outcome, color: bool) -> String {
    let (red, green, reset) = if color {
        ("\x1b[31m", "\x1b[32m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    let mut out = String::new();
    for suite in &outcome.suites {
        for case in &suite.cases {
            if case.failures.is_empty() {
                out.push_str(&format!("{green}ok{reset}   {}: {}\n", case.at, case.name));
                continue;
            }
            out.push_str(&format!("{red}FAIL{reset} {}: {}\n", case.at, case.name));
            for f in &case.failures {
                out.push_str(&format!("  {}: {}: {}\n", f.at, f.what, f.mismatch.what));
                let m = &f.mismatch;
                if m.expected.is_empty() {
                    for line in m.actual.lines() {
                        out.push_str(&format!("    {line}\n"));
                    }
                    continue;
                }
                out.push_str(&format!(
                    "    {red}- expected{reset}\n    {green}+ actual{reset}\n"
                ));
                for line in
                    expect::diff(&with_newline(&m.expected), &with_newline(&m.actual), color)
                        .lines()
                {
                    out.push_str(&format!("    {line}\n"));
                }
            }
        }
    }
    let (passed, failed) = outcome.counts();
    out.push_str(&format!("{passed} passed, {failed} failed"));
    match outcome.checked.len() {
        0 => {}
        1 => out.push_str("; 1 pipeline file without test cases checked"),
        n => out.push_str(&format!("; {n} pipeline files without test cases checked")),
    }
    out.push('\n');
    out
}

fn with_newline(text: &str) -> String {
    if text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}
