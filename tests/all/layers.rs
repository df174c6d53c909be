//! The dependency rule of DESIGN.md, read from the sources: each layer
//! uses only the modules below it. `sys` uses nothing of the crate; the
//! outer wall (`wall`) and the inner wall (`engine`) never see each other;
//! the cache knows neither; only `launch` and what stands above it
//! (`plugin`, the binary) put the walls and the engine together.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each layer (a file or a folder of `src/`) and the top-level modules it
/// may use. `say` (wsandbox's own lines) may be used by every layer.
const RULES: &[(&str, &[&str])] = &[
    ("sys", &[]),
    ("policy", &["say"]),
    ("wall", &["sys", "policy", "say"]),
    ("engine", &["policy", "say"]),
    ("cache", &["say"]),
    // The server blocks and waits for the termination signals itself.
    ("serve", &["engine", "policy", "say", "error", "sys"]),
];

/// The top-level modules that the crate root re-exports an item of.
/// (`say_log!` is a macro of `say`'s, exported at the root as macros are.)
const REEXPORTS: &[(&str, &str)] = &[("Error", "error"), ("Policy", "policy"), ("say_log", "say")];

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for (layer, allowed) in RULES {
        let files = sources(&src, layer);
        assert!(!files.is_empty(), "no source for the layer {layer}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for used in crate_modules(&text) {
                if used != *layer && !allowed.contains(&used.as_str()) {
                    broken.push(format!("{} uses crate::{used}", file.display()));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "the dependency rule is broken:\n{}",
        broken.join("\n")
    );
}

/// The reader sees through what a layer may write: a `use` group, a path
/// in code, a root re-export; and not what a comment says.
#[test]
fn the_reader_finds_every_way_of_using_a_module() {
    let text = "//! [`crate::launch`] in a doc comment\n\
                use crate::{Error, policy::Access,\n    wall::{self, Layer}};\n\
                use crate::engine::Module;\n\
                fn f() { crate::cache::hex(&[]); } // crate::serve\n";
    let found = crate_modules(text);
    let expected: BTreeSet<String> = ["error", "policy", "wall", "engine", "cache"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, expected);
}

/// The `.rs` files of a layer: `src/LAYER.rs`, or every file under
/// `src/LAYER/`.
fn sources(src: &Path, layer: &str) -> Vec<PathBuf> {
    let file = src.join(format!("{layer}.rs"));
    if file.is_file() {
        return vec![file];
    }
    let mut files = Vec::new();
    let mut dirs = vec![src.join(layer)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The top-level modules of the crate that `text` uses, through `crate::`
/// paths (comments left out).
fn crate_modules(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        // `$crate::` and `wsandbox_crate::` are not this crate's paths.
        let before = rest[..at].chars().next_back();
        let ours = !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
        if ours {
            if let Some(group) = after.strip_prefix('{') {
                let end = matching_brace(group);
                for item in top_level_items(&group[..end]) {
                    found.insert(module_of(&item));
                }
            } else {
                found.insert(module_of(after));
            }
        }
        rest = after;
    }
    found.retain(|m| !m.is_empty());
    found
}

/// Where the group that starts `text` (after its `{`) ends.
fn matching_brace(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

/// The items of a `use` group, split at its own commas.
fn top_level_items(group: &str) -> Vec<String> {
    let (mut items, mut item, mut depth) = (Vec::new(), String::new(), 0);
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(item);
    items
        .into_iter()
        .map(|i| i.trim().to_string())
        .filter(|i| !i.is_empty())
        .collect()
}

/// The top-level module a path starts in (a root re-export counts as its
/// module).
fn module_of(path: &str) -> String {
    let name: String = path
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    REEXPORTS
        .iter()
        .find(|(item, _)| *item == name)
        .map_or(name, |(_, module)| module.to_string())
}
