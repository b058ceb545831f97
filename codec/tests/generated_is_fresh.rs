//! The committed generated code must be what flatc makes from the committed schema.
#[test]
fn generated_code_matches_the_schema() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/regen.sh");
    let status = std::process::Command::new("bash").arg(script).arg("--check").status().expect("run codec/regen.sh");
    assert!(status.success(), "codec/src/generated is stale: run `bash codec/regen.sh` and commit the result");
}
