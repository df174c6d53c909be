//! The README, tried as a new user would: every shell block runs without
//! an error, every `console` transcript prints what it shows, and the
//! example policy file is a policy. (The Rust block is a doctest.)
//!
//! The commands run in a scratch directory laid out like a checkout after
//! the README's build steps: the repository's files linked in, the
//! binaries `cargo test` built linked at `target/release/`, and the guests
//! it built linked where `cargo build --target ...` of `guests/rust` and
//! `guests/components` puts them. Those build lines are the only ones not
//! run (they are what `cargo test` already did), and so is the test
//! command itself.

use crate::{TEST_CACHE, example};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fenced block of the README.
struct Block {
    lang: String,
    text: String,
    /// The line of its opening fence.
    line: usize,
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

fn blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in readme.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    lang: lang.trim().to_owned(),
                    text: String::new(),
                    line: i + 1,
                })
            }
            (Some(_), Some("")) => blocks.push(open.take().unwrap()),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "an unclosed block in the README");
    blocks
}

/// A scratch checkout: the repository's files and the built binaries and
/// guests, linked where the README expects them.
fn checkout() -> tempfile::TempDir {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let link = |from: PathBuf, to: &str| {
        let to = dir.path().join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(from, to).unwrap();
    };
    for entry in [
        "README.md",
        "Cargo.toml",
        "examples",
        "wit",
        "docs",
        "guests/wat",
        "python",
    ] {
        link(repo.join(entry), entry);
    }
    let built = |constant: &str| Path::new(constant).parent().unwrap().to_path_buf();
    link(
        built(wsandbox_guests::SHAPES),
        "guests/components/target/wasm32-wasip2/release",
    );
    link(
        built(wsandbox_guests::p1("hello")),
        "guests/rust/target/wasm32-wasip1/release",
    );
    link(env!("CARGO_BIN_EXE_wsandbox").into(), "target/release/wsandbox");
    let plugin_host = example("plugin_host").get_program().to_owned();
    link(plugin_host.into(), "target/release/examples/plugin_host");
    dir
}

/// A bash in the scratch checkout, with `wsandbox` on its PATH.
fn bash(checkout: &Path, script: &str) -> Command {
    let mut cmd = Command::new("bash");
    let path = format!(
        "{}:{}",
        checkout.join("target/release").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.args(["-c", script])
        .current_dir(checkout)
        .env("PATH", path)
        .env("XDG_CACHE_HOME", TEST_CACHE);
    cmd
}

/// A shell block as a script: continuation lines joined, the build steps
/// `cargo test` already did left out, `cargo run` as the built binary.
fn script_of(block: &str) -> String {
    let joined = block.replace("\\\n", " ");
    // Whatever a block leaves running in the background ends with it.
    let mut script = String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    for line in joined.lines() {
        let line = line.trim();
        let run = if line.starts_with("cargo build") || line.starts_with("rustup ") {
            ":".to_owned()
        } else if let Some(args) = line.strip_prefix("cargo run --release -- ") {
            format!("wsandbox {args}")
        } else if let Some(rest) = line.strip_prefix("cargo run --release --example ") {
            let (name, args) = rest.split_once(" -- ").unwrap_or((rest, ""));
            format!("target/release/examples/{name} {args}")
        } else {
            line.to_owned()
        };
        script.push_str(&run);
        script.push('\n');
    }
    script
}

#[test]
fn every_shell_block_of_the_readme_runs() {
    let checkout = checkout();
    let readme = readme();
    let shell: Vec<Block> = blocks(&readme).into_iter().filter(|b| b.lang == "sh").collect();
    assert!(shell.len() >= 5, "the README's shell blocks are gone");
    for block in shell {
        let script = script_of(&block.text);
        let out = bash(checkout.path(), &script).output().unwrap();
        assert!(
            out.status.success(),
            "README line {}: the block failed ({:?}):\n{script}\nstdout: {}\nstderr: {}",
            block.line,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Whether `actual` is `expected`, where a line `...` of `expected` stands
/// for any number of lines.
fn matches(expected: &[&str], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((&"...", rest)) => (0..=actual.len()).any(|skip| matches(rest, &actual[skip..])),
        Some((line, rest)) => actual
            .split_first()
            .is_some_and(|(first, others)| first == line && matches(rest, others)),
    }
}

#[test]
fn every_transcript_of_the_readme_prints_what_it_shows() {
    let checkout = checkout();
    let readme = readme();
    let transcripts: Vec<Block> = blocks(&readme)
        .into_iter()
        .filter(|b| b.lang == "console")
        .collect();
    assert!(transcripts.len() >= 4, "the README's transcripts are gone");
    const MARK: &str = "@@@ readme command";
    for block in transcripts {
        // Commands and what each shows; all of a transcript in one shell,
        // whose variables carry from command to command.
        let mut commands: Vec<(String, Vec<&str>)> = Vec::new();
        for line in block.text.lines() {
            match line.strip_prefix("$ ") {
                Some(command) => commands.push((command.to_owned(), Vec::new())),
                None => commands
                    .last_mut()
                    .unwrap_or_else(|| panic!("README line {}: output before a command", block.line))
                    .1
                    .push(line),
            }
        }
        let mut script = String::from("exec 2>&1\n");
        for (command, _) in &commands {
            script.push_str(&format!("echo '{MARK}'\n{command}\n"));
        }
        let out = bash(checkout.path(), &script).output().unwrap();
        let printed = String::from_utf8_lossy(&out.stdout).into_owned();
        let outputs: Vec<&str> = printed.split(&format!("{MARK}\n")).skip(1).collect();
        assert_eq!(
            outputs.len(),
            commands.len(),
            "README line {}: {printed}",
            block.line
        );
        for ((command, expected), output) in commands.iter().zip(outputs) {
            let actual: Vec<&str> = output.lines().collect();
            assert!(
                matches(expected, &actual),
                "README line {}: `{command}` printed\n{output}\nnot\n{}",
                block.line,
                expected.join("\n")
            );
        }
    }
}

#[test]
fn the_readme_policy_file_is_a_policy() {
    let checkout = checkout();
    let readme = readme();
    let toml: Vec<Block> = blocks(&readme).into_iter().filter(|b| b.lang == "toml").collect();
    assert!(!toml.is_empty());
    // Two levels down, so that its "../.." is the scratch checkout.
    let dir = checkout.path().join("policies/readme");
    std::fs::create_dir_all(&dir).unwrap();
    for block in toml {
        let path = dir.join("policy.toml");
        std::fs::write(&path, &block.text).unwrap();
        let out = bash(
            checkout.path(),
            &format!("wsandbox policy --config {}", path.display()),
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "README line {}: {}",
            block.line,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_transcript_matcher_is_exact_but_for_ellipses() {
    assert!(matches(&["a", "b"], &["a", "b"]));
    assert!(!matches(&["a", "b"], &["a", "c"]));
    assert!(!matches(&["a"], &["a", "b"]));
    assert!(matches(&["a", "...", "d"], &["a", "b", "c", "d"]));
    assert!(matches(&["a", "..."], &["a"]));
    assert!(!matches(&["a", "...", "d"], &["a", "b"]));
}

/// What the README's set-up builds (the guests' own `target/` too) is
/// ignored by git, and the license `Cargo.toml` names is there.
#[test]
fn build_outputs_are_ignored_and_the_license_is_there() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ignores = std::fs::read_to_string(repo.join(".gitignore")).unwrap();
    for built in ["/target", "/guests/rust/target", "/guests/components/target"] {
        assert!(
            ignores.lines().any(|line| line == built),
            "{built} is not ignored"
        );
    }
    let manifest = std::fs::read_to_string(repo.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("license = \"Apache-2.0\""),
        "Cargo.toml's license changed"
    );
    let license = std::fs::read_to_string(repo.join("LICENSE")).unwrap();
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
}
