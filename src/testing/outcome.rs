//! What came of running test cases: per file, per case, per expectation that did not hold.

use std::path::PathBuf;

use super::expect::Mismatch;
use crate::config::Diagnostic;

/// What came of running the tests of some files.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Each pipeline file with tests, in the order found.
    pub suites: Vec<Suite>,
    /// Pipeline files without test cases: loaded and checked as `sluice check` does, nothing
    /// run.
    pub checked: Vec<PathBuf>,
    /// Files that could not be read or loaded: nothing of them ran.
    pub errors: Vec<Diagnostic>,
}

/// The test cases of one pipeline file.
#[derive(Debug)]
pub struct Suite {
    /// The pipeline file.
    pub file: PathBuf,
    /// Its cases, in order.
    pub cases: Vec<CaseResult>,
}

/// What came of one test case.
#[derive(Debug)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// Where the case is written (file:line:column).
    pub at: String,
    /// Every expectation that did not hold; empty when the case passed.
    pub failures: Vec<CaseFailure>,
}

/// An expectation that did not hold.
#[derive(Debug)]
pub struct CaseFailure {
    /// Where the expectation is written (file:line:column).
    pub at: String,
    /// Which expectation (`output[1]`, `filtered`).
    pub what: String,
    /// How it differs.
    pub mismatch: Mismatch,
}

impl Outcome {
    /// Test cases that passed and that failed.
    pub fn counts(&self) -> (usize, usize) {
        let cases = self.suites.iter().flat_map(|s| &s.cases);
        let failed = cases.clone().filter(|c| !c.failures.is_empty()).count();
        (cases.count() - failed, failed)
    }
}
