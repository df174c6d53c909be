//! A plugin (`wit/plugin.wit`) whose `handle` takes a URL and answers with
//! the body it GETs there over `wasi:http`: for wsandbox's tests of a
//! plugin's outgoing requests.

wit_bindgen::generate!({ world: "plugin", path: "../../../wit" });

use exports::wsandbox::plugin::guest::{Guest, PluginInfo};

struct Fetch;

impl Guest for Fetch {
    fn metadata() -> PluginInfo {
        PluginInfo {
            name: "fetch".into(),
            version: "0.0.0".into(),
            description: "GETs the URL it is given and answers with the body".into(),
        }
    }

    fn handle(input: Vec<u8>) -> Result<Vec<u8>, String> {
        let url = String::from_utf8(input).map_err(|e| e.to_string())?;
        match get::get(url.trim()) {
            Ok((200, body)) => Ok(body),
            Ok((status, _)) => Err(format!("status {status}")),
            Err(err) => Err(err),
        }
    }
}

export!(Fetch);
