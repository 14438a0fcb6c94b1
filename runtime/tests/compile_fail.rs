//! Compile-fail tests: programs the API must reject (a `Gc` escaping its
//! scope or thread, mixing brands, storing without the barrier, unsound
//! `#[derive(Trace)]` uses). Each case in `tests/ui/` states the property
//! it checks; the `.stderr` next to it is the expected diagnostic.

#[test]
fn ui() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
