//! The Python host package (`python/`): its pytest suite, run against the
//! wsandbox and the guests this build made, and its install.

use std::path::Path;
use std::process::Command;

/// `python/` in this tree.
fn package() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/python"))
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The package's tests: calls, handle, host functions, each error as its
/// exception, no process left behind, the example host program. They run
/// on the sources, so that what is tested is this tree's.
#[test]
fn the_python_packages_tests_pass() {
    assert!(
        python_has("pytest"),
        "pytest is missing: `python3 -m pip install pytest` (.ci/run installs it)"
    );
    let out = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .current_dir(package())
        .env("PYTHONPATH", package().join("src"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("WSANDBOX_BIN", env!("CARGO_BIN_EXE_wsandbox"))
        .env("WSANDBOX_TEST_SHAPES", wsandbox_guests::SHAPES)
        .env("WSANDBOX_TEST_HOSTED", wsandbox_guests::HOSTED)
        .env("WSANDBOX_TEST_WORDS", wsandbox_guests::WORDS)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains(" passed"), "{report}");
    assert!(!report.contains("skipped"), "{report}");
}

/// Its type hints hold: `mypy --strict` finds nothing to say.
#[test]
fn the_python_packages_type_hints_hold() {
    assert!(
        python_has("mypy"),
        "mypy is missing: `python3 -m pip install mypy` (.ci/run installs it)"
    );
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .args(["-m", "mypy", "--strict", "--cache-dir"])
        .arg(cache.path())
        .arg(package().join("src/wsandbox"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
