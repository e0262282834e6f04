//! Deeply nested jq programs: they load or fail with a position, never overflowing a stack, and
//! a program that loads runs on a worker's stack.

use proptest::prelude::*;
use sluice::transform::Chain;

use super::events::{Stage, run};
use super::loading::{check_load, load};
use super::{WORKER_STACK, config};

/// Pieces that nest a jq program one level more each, as (before, after) the inner program:
/// brackets, blocks, string interpolation, and operators that chain.
const NESTINGS: &[(&str, &str)] = &[
    ("(", ")"),
    ("[", "]"),
    ("{a: ", "}"),
    ("if . then ", " else 1 end"),
    ("\"s\\(", ")\""),
    (".a | ", ""),
    ("1, ", ""),
    ("1 + ", ""),
    ("try ", ""),
    ("-", ""),
    (". as $x | ", ""),
    ("reduce .[] as $x (", "; .)"),
    ("[.[] | ", "]"),
    ("def f: ", "; f"),
    (". // ", ""),
];

/// A jq program nested `pieces` deep, innermost last.
fn nested_program(pieces: &[usize]) -> String {
    let mut program = String::new();
    for &i in pieces {
        program.push_str(NESTINGS[i].0);
    }
    program.push('.');
    for &i in pieces.iter().rev() {
        program.push_str(NESTINGS[i].1);
    }
    program
}

proptest! {
    #![proptest_config(config(96))]

    /// Any nesting of any depth (up to five times the limit) loads or fails with a diagnostic
    /// inside the text, never overflowing a stack; a program that loads runs on an event on a
    /// worker's stack without overflowing it either.
    #[test]
    fn deeply_nested_jq_loads_or_fails_with_a_position_and_runs_if_it_loads(
        pieces in prop::collection::vec(0..NESTINGS.len(), 1..5_000),
        same in any::<bool>(),
    ) {
        // Half the cases nest one piece only, the shape a generated program has.
        let pieces: Vec<usize> = if same { vec![pieces[0]; pieces.len()] } else { pieces };
        let program = nested_program(&pieces);
        let text = format!(
            "input:\n  stdin: {{}}\ntransforms:\n  - jq: |\n      {program}\noutput:\n  stdout: {{}}\nerrors: drop\n"
        );
        let loaded = check_load(&text)?;
        if pieces.len() > 5 * sluice::transform::nesting::MAX_DEPTH {
            prop_assert!(loaded.is_err(), "{} levels loaded", pieces.len());
        }
        if let Ok(pipeline) = loaded {
            let ran = std::thread::Builder::new()
                .stack_size(WORKER_STACK)
                .spawn(move || {
                    let config = pipeline.config;
                    let stage = Stage {
                        name: "nested",
                        codec: config.input.codec().plain(),
                        chain: Chain::build(&config.transforms, config.settings.max_fanout).unwrap(),
                    };
                    // Success or a jq error: either way, no abort.
                    let _ = run(&stage, br#"{"a": [1, {"a": 2}]}"#);
                })
                .unwrap()
                .join();
            prop_assert!(ran.is_ok(), "running the program panicked");
        }
    }
}

#[test]
fn the_jq_programs_reported_to_abort_check_are_refused_with_a_position() {
    for (program, column) in [
        (
            format!("{}.{}", "(".repeat(3_200), ")".repeat(3_200)),
            1_009,
        ),
        (
            format!("{}.{}", "[".repeat(3_200), "]".repeat(3_200)),
            1_009,
        ),
        (vec![".a"; 5_000].join(" | "), 5_008),
    ] {
        let text = format!(
            "input:\n  stdin: {{}}\ntransforms:\n  - jq: '{program}'\noutput:\n  stdout: {{}}\nerrors: drop\n"
        );
        let errors = load(&text).expect_err("refused");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            (errors[0].line, errors[0].column),
            (4, column),
            "{errors:?}"
        );
        assert!(
            errors[0]
                .message
                .starts_with("jq program nested too deeply"),
            "{errors:?}"
        );
    }
}
