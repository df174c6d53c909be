//! Malformed input, generated: mutated modules fed to the module loader and
//! the engine, arbitrary strings fed to the policy parser. Every input must
//! end in a value or one clear error, never a panic. A short, bounded run
//! (fixed case counts, no saved regressions) is part of `cargo test`; raise
//! `PROPTEST_CASES` for a longer one.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::path::{Path, PathBuf};
use wsandbox::engine::{self, Module};
use wsandbox::policy::{Access, DirGrant, EnvVar, Policy};

/// Valid inputs to start from: every `.wat` guest as text and as binary,
/// and a Rust guest as a core module and as a component.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    for name in [
        "hello",
        "trap",
        "exit-code",
        "no-start",
        "unknown-import",
        "component",
        "exit-code-component",
    ] {
        let path = wsandbox_guests::wat(name);
        seeds.push(("wat", std::fs::read(&path).unwrap()));
        seeds.push(("wasm", Module::load(Path::new(&path)).unwrap().bytes));
    }
    for path in [wsandbox_guests::p1("exit"), wsandbox_guests::p2("exit")] {
        seeds.push(("wasm", std::fs::read(path).unwrap()));
    }
    seeds
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    /// Copy a run of the input elsewhere in it (duplicated sections, lengths
    /// that now lie).
    Copy(Index, Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        2 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (any::<Index>(), any::<Index>(), 1usize..256).prop_map(|(a, b, n)| Mutation::Copy(a, b, n)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let len = bytes.len();
        match m {
            Mutation::Flip(i, b) => bytes[i.index(len)] ^= b | 1,
            Mutation::Truncate(i) => bytes.truncate(i.index(len)),
            Mutation::Insert(i, v) => {
                let at = i.index(len);
                bytes.splice(at..at, v.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let at = i.index(len);
                bytes.drain(at..(at + n).min(len));
            }
            Mutation::Copy(from, to, n) => {
                let from = from.index(len);
                let run: Vec<u8> = bytes[from..(from + n).min(len)].to_vec();
                let to = to.index(len);
                bytes.splice(to..to, run);
            }
        }
    }
    bytes
}

fn runner(cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    // The same cases on every run: a failure is reproduced by running again.
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    )
}

/// Loads and compiles `bytes` as a module file named `name`: either works,
/// or one error line naming the file; no panic either way.
fn load_and_check(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let result = std::panic::catch_unwind(|| {
        Module::load(&path)
            .map_err(wsandbox::Error::from)
            .and_then(|m| Ok(engine::check(&m)?))
    });
    let result = result.map_err(|_| TestCaseError::fail("the loader or the engine panicked"))?;
    if let Err(err) = result {
        let message = err.to_string();
        prop_assert!(!message.contains('\n'), "not one line: {message}");
        prop_assert!(message.starts_with(&path.display().to_string()), "{message}");
        prop_assert_eq!(err.exit_code(), 126, "{}", message);
    }
    Ok(())
}

#[test]
fn mutated_modules_end_in_a_clear_error_never_a_panic() {
    let seeds = seeds();
    let dir = tempfile::tempdir().unwrap();
    let strategy = (0..seeds.len(), prop::collection::vec(mutation(), 1..6));
    runner(1000)
        .run(&strategy, |(seed, mutations)| {
            let (ext, bytes) = &seeds[seed];
            load_and_check(
                dir.path(),
                &format!("mutant.{ext}"),
                &mutate(bytes.clone(), &mutations),
            )
        })
        .unwrap();
}

#[test]
fn random_bytes_end_in_a_clear_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // Random bytes, with and without the binary header, under either name.
    let strategy = (
        prop::bool::ANY,
        prop::bool::ANY,
        prop::collection::vec(any::<u8>(), 0..512),
    );
    runner(300)
        .run(&strategy, |(header, text, rest)| {
            let mut bytes = if header {
                b"\0asm\x01\0\0\0".to_vec()
            } else {
                Vec::new()
            };
            bytes.extend(rest);
            load_and_check(
                dir.path(),
                if text { "random.wat" } else { "random.wasm" },
                &bytes,
            )
        })
        .unwrap();
}

/// Any text in `--dir`, `--ro-dir`, `--env`, `--hostname`: the policy is
/// accepted or refused with one line (exit 125), never a panic.
#[test]
fn arbitrary_policy_text_ends_in_a_clear_error_never_a_panic() {
    let text = || {
        prop_oneof![
            any::<String>(),
            "[a-z/:=.]{0,12}",
            Just("::".to_string()),
            Just("/tmp::".to_string()),
            Just("=".to_string()),
            Just("/proc".to_string()),
        ]
    };
    let strategy = (
        prop::collection::vec((text(), prop::bool::ANY), 0..4),
        prop::collection::vec(text(), 0..4),
        text(),
    );
    runner(1000)
        .run(&strategy, |(dirs, env, hostname)| {
            let mut policy = Policy {
                dirs: dirs
                    .iter()
                    .map(|(d, ro)| DirGrant::parse(d, if *ro { Access::ReadOnly } else { Access::ReadWrite }))
                    .collect(),
                env: env.iter().map(|e| EnvVar::parse(e)).collect(),
                hostname,
                ..Policy::default()
            };
            let result = std::panic::catch_unwind(move || {
                policy.resolve().and_then(|()| policy.guest_env().map(drop))
            });
            let result = result.map_err(|_| TestCaseError::fail("the policy parser panicked"))?;
            if let Err(err) = result {
                let message = err.to_string();
                prop_assert!(!message.contains('\n'), "not one line: {message:?}");
                prop_assert_eq!(wsandbox::Error::from(err).exit_code(), 125);
            }
            Ok(())
        })
        .unwrap();
}
