//! Reading criterion's results back, shared by the benches that print a
//! ratio table at the end (`heap/benches/alloc.rs`,
//! `runtime/benches/{binary_trees,churn}.rs`, which include this file with
//! `#[path]`).

use std::path::PathBuf;

/// Criterion's output directory, found the way criterion 0.8 finds it:
/// `$CRITERION_HOME`, else `<cargo target dir>/criterion` (from
/// `$CARGO_TARGET_DIR`, or `$CARGO metadata` when run by cargo), else
/// `target/criterion` under the working directory.
pub fn criterion_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(h);
    }
    match cargo_target_dir() {
        Some(t) => t.join("criterion"),
        None => PathBuf::from("target/criterion"),
    }
}

fn cargo_target_dir() -> Option<PathBuf> {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(t));
    }
    let out = std::process::Command::new(std::env::var_os("CARGO")?)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .ok()?;
    let json = String::from_utf8(out.stdout).ok()?;
    // The top-level `"target_directory":"..."` (the last one in the output).
    let key = "\"target_directory\"";
    let rest = json[json.rfind(key)? + key.len()..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let mut dir = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            '"' => break,
            '\\' => dir.push(chars.next()?),
            c => dir.push(c),
        }
    }
    Some(PathBuf::from(dir))
}

/// The `point_estimate` of the `median` object in criterion's
/// `estimates.json` (hand-parsed: no JSON dependency).
pub fn parse_median(json: &str) -> Option<f64> {
    let rest = &json[json.find("\"median\"")?..];
    let rest = &rest[rest.find("\"point_estimate\"")? + "\"point_estimate\"".len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|ch: char| !(ch.is_ascii_digit() || matches!(ch, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}
