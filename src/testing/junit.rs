//! The outcome of `sluice test` as a JUnit XML report, for CI systems.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::outcome::Outcome;

/// The report: one test suite per pipeline file, one test case per case; a failed case carries
/// every expectation that did not hold, with where it is written. Files that could not be loaded
/// are a suite of their own, each error a case in error.
pub fn report(outcome: &Outcome) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new("sluice test");
    for suite in &outcome.suites {
        let mut junit = TestSuite::new(suite.file.display().to_string());
        for case in &suite.cases {
            let status = if case.failures.is_empty() {
                TestCaseStatus::success()
            } else {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let first = &case.failures[0];
                status.set_message(format!("{}: {}", first.what, first.mismatch.what));
                let description: Vec<String> = case
                    .failures
                    .iter()
                    .map(|f| {
                        let m = &f.mismatch;
                        format!(
                            "{}: {}: {}\nexpected:\n{}\nactual:\n{}",
                            f.at, f.what, m.what, m.expected, m.actual
                        )
                    })
                    .collect();
                status.set_description(description.join("\n\n"));
                status
            };
            let mut junit_case = TestCase::new(case.name.clone(), status);
            junit_case.set_classname(case.at.clone());
            junit.add_test_case(junit_case);
        }
        report.add_test_suite(junit);
    }
    if !outcome.errors.is_empty() {
        let mut junit = TestSuite::new("files that could not be loaded");
        for error in &outcome.errors {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(error.to_string());
            junit.add_test_case(TestCase::new(error.file.display().to_string(), status));
        }
        report.add_test_suite(junit);
    }
    report.to_string()
}
