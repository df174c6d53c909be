//! `words`, the example plugin of wsandbox's plugin world (`wit/plugin.wit`):
//! text in, a JSON summary out — how many lines and words, and the most
//! frequent words. What a plugin author writes: pure data in, data out,
//! a log line through the host.

wit_bindgen::generate!({ world: "plugin", path: "../../../wit" });

use exports::wsandbox::plugin::guest::{Guest, PluginInfo};
use std::collections::HashMap;
use wsandbox::plugin::host::{Level, log};

struct Words;

/// How many of the most frequent words the summary lists.
const TOP: usize = 3;

impl Guest for Words {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "words".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "counts the lines and words of a UTF-8 text, and its most frequent words".into(),
        }
    }

    fn handle(input: Vec<u8>) -> Result<Vec<u8>, String> {
        let text = String::from_utf8(input).map_err(|e| format!("the input is not UTF-8: {e}"))?;
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut words = 0;
        for word in text.split(|c: char| !c.is_alphanumeric() && c != '\'') {
            if word.is_empty() {
                continue;
            }
            words += 1;
            *counts.entry(word.to_lowercase()).or_default() += 1;
        }
        let mut top: Vec<(String, usize)> = counts.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(TOP);
        log(Level::Info, &format!("{} bytes, {words} words", text.len()));
        let top: Vec<String> = top.iter().map(|(w, n)| format!("[{}, {n}]", json_string(w))).collect();
        let summary = format!(
            "{{\"lines\": {}, \"words\": {words}, \"top\": [{}]}}",
            text.lines().count(),
            top.join(", ")
        );
        Ok(summary.into_bytes())
    }
}

/// `s` as a JSON string.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

export!(Words);
