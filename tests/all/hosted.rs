//! Host functions of the plugin library: a plugin (`guests/components/
//! hosted`) that calls functions of its host program, each call crossing
//! from the sandboxed worker to this process and back in the middle of
//! the plugin's own call; and plugins loaded from bytes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wsandbox::Policy;
use wsandbox::plugin::{Plugin, PluginError, Val};

const HOST: &str = "wsandbox:hosted/host";

fn host(name: &str) -> String {
    format!("{HOST}.{name}")
}

/// The `hosted` plugin with every host function it imports: `mirror`
/// swaps in [`changed`], `checked` doubles or fails below 0, `plain`
/// doubles or fails at 0, `tick` counts in `ticks`, `now` is 42.
fn hosted(ticks: Arc<AtomicU64>) -> Plugin {
    Plugin::new(wsandbox_guests::HOSTED, Policy::default())
        .binary(env!("CARGO_BIN_EXE_wsandbox"))
        .cache(false)
        .host_fn(host("mirror"), |args| Ok(vec![changed(&args[0])]))
        .host_fn(host("checked"), |args| match args {
            [Val::S32(n)] if *n >= 0 => Ok(vec![Val::Result(Ok(Some(Box::new(Val::S32(n * 2)))))]),
            [Val::S32(n)] => Err(format!("the host refuses {n}")),
            other => Err(format!("not an s32: {other:?}")),
        })
        .host_fn(host("plain"), |args| match args {
            [Val::U32(0)] => Err("the host cannot take 0".into()),
            [Val::U32(n)] => Ok(vec![Val::U32(n * 2)]),
            other => Err(format!("not a u32: {other:?}")),
        })
        .host_fn(host("tick"), move |_| {
            Ok(vec![Val::U64(ticks.fetch_add(1, Ordering::SeqCst) + 1)])
        })
        .host_fn("now", |_| Ok(vec![Val::U64(42)]))
}

fn some(val: Val) -> Option<Box<Val>> {
    Some(Box::new(val))
}

fn point(x: i32, y: i32) -> Val {
    Val::Record(vec![("x".into(), Val::S32(x)), ("y".into(), Val::S32(y))])
}

/// A record with every shape of value of `shapes`.
fn everything() -> Val {
    Val::Record(vec![
        ("text".into(), Val::String("héllo\0".into())),
        ("small".into(), Val::S32(-7)),
        ("wide".into(), Val::U64(u64::MAX)),
        ("real".into(), Val::Float64(-0.5)),
        ("single".into(), Val::Float32(1.5)),
        ("yes".into(), Val::Bool(true)),
        ("letter".into(), Val::Char('ß')),
        ("at".into(), point(-1, 2)),
        ("form".into(), Val::Variant("rect".into(), some(point(3, 4)))),
        ("hue".into(), Val::Enum("green".into())),
        ("perms".into(), Val::Flags(vec!["read".into(), "exec".into()])),
        ("maybe".into(), Val::Option(some(Val::U32(9)))),
        ("outcome".into(), Val::Result(Err(some(Val::String("no".into()))))),
        (
            "words".into(),
            Val::List(vec![Val::String("a".into()), Val::String("".into())]),
        ),
        (
            "pair".into(),
            Val::Tuple(vec![Val::U8(255), Val::String("p".into())]),
        ),
        (
            "data".into(),
            Val::List(vec![Val::U8(0), Val::U8(1), Val::U8(255)]),
        ),
    ])
}

/// What the host makes of [`everything`]: each field changed, so that a
/// value that came back unchanged is caught.
fn changed(given: &Val) -> Val {
    assert_eq!(given, &everything(), "the host got what the plugin was given");
    Val::Record(vec![
        ("text".into(), Val::String("HÉLLO".into())),
        ("small".into(), Val::S32(i32::MIN)),
        ("wide".into(), Val::U64(0)),
        ("real".into(), Val::Float64(f64::INFINITY)),
        ("single".into(), Val::Float32(-0.0)),
        ("yes".into(), Val::Bool(false)),
        ("letter".into(), Val::Char('🦀')),
        ("at".into(), point(i32::MAX, 0)),
        (
            "form".into(),
            Val::Variant("circle".into(), some(Val::Float64(2.0))),
        ),
        ("hue".into(), Val::Enum("blue".into())),
        ("perms".into(), Val::Flags(vec![])),
        ("maybe".into(), Val::Option(None)),
        ("outcome".into(), Val::Result(Ok(some(Val::S32(5))))),
        ("words".into(), Val::List(vec![])),
        (
            "pair".into(),
            Val::Tuple(vec![Val::U8(0), Val::String("".into())]),
        ),
        ("data".into(), Val::List(vec![])),
    ])
}

#[test]
fn host_functions_take_and_give_every_shape_of_value() {
    let mut plugin = hosted(Arc::default());
    let returned = plugin.call("via-host", &[everything()]).unwrap();
    assert_eq!(returned, vec![changed(&everything())]);
    // A function the world imports on its own, by its plain name.
    assert_eq!(plugin.call("clock", &[]).unwrap(), vec![Val::U64(42)]);
}

#[test]
fn a_failing_host_function_is_the_plugins_error_value_or_else_a_trap() {
    let mut plugin = hosted(Arc::default());
    let ok = plugin.call("checked", &[Val::S32(20)]).unwrap();
    assert_eq!(ok, vec![Val::Result(Ok(some(Val::S32(41))))]);
    // The function returns result<s32, string>: the host's message is its
    // error value, and the worker lives on.
    let pid = plugin.worker_pid();
    let refused = plugin.call("checked", &[Val::S32(-1)]).unwrap();
    assert_eq!(
        refused,
        vec![Val::Result(Err(some(Val::String("the host refuses -1".into()))))]
    );
    assert_eq!(plugin.worker_pid(), pid);
    // `plain` returns a bare u32: its failure traps the call, naming the
    // function and the host's message; the next call gets a fresh worker.
    match plugin.call("plain", &[Val::U32(0)]) {
        Err(PluginError::Trapped(why)) => {
            assert!(
                why.contains(&format!("host function `{}`", host("plain"))),
                "{why}"
            );
            assert!(why.contains("the host cannot take 0"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(plugin.call("plain", &[Val::U32(21)]).unwrap(), vec![Val::U32(42)]);
}

/// A host function that answers with values of the wrong type, or
/// panics, traps the plugin's call with a clear error; the host lives on.
#[test]
fn a_host_function_that_answers_wrong_or_panics_traps_the_call() {
    let mut plugin = hosted(Arc::default())
        .host_fn(host("plain"), |_| Ok(vec![Val::String("not a number".into())]))
        .host_fn(host("tick"), |_| panic!("a bug in the host"));
    match plugin.call("plain", &[Val::U32(1)]) {
        Err(PluginError::Trapped(why)) => {
            assert!(
                why.contains("the host returned a string where u32 was wanted"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    match plugin.call("ticks", &[Val::U32(1)]) {
        Err(PluginError::Trapped(why)) => assert!(why.contains("panicked"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(plugin.call("clock", &[]).unwrap(), vec![Val::U64(42)]);
}

/// The plugin calls into its host while the host waits for the plugin's
/// answer, thousands of times in one call, and the host's state is the
/// host's.
#[test]
fn a_plugin_calls_its_host_again_and_again_within_one_call() {
    let ticks = Arc::new(AtomicU64::new(0));
    let mut plugin = hosted(Arc::clone(&ticks));
    assert_eq!(
        plugin.call("ticks", &[Val::U32(5000)]).unwrap(),
        vec![Val::U64(5000)]
    );
    assert_eq!(
        plugin.call("ticks", &[Val::U32(1)]).unwrap(),
        vec![Val::U64(5001)]
    );
    assert_eq!(ticks.load(Ordering::SeqCst), 5001);
}

#[test]
fn a_plugin_that_imports_what_its_host_does_not_offer_is_refused() {
    let mut plugin = Plugin::new(wsandbox_guests::HOSTED, Policy::default())
        .binary(env!("CARGO_BIN_EXE_wsandbox"))
        .cache(false)
        .host_fn(host("mirror"), |args| Ok(args.to_vec()))
        .host_fn(host("checked"), |args| Ok(args.to_vec()))
        .host_fn(host("plain"), |args| Ok(args.to_vec()));
    match plugin.exports() {
        Err(PluginError::Start(why)) => {
            assert!(why.contains(&format!("`{}`", host("tick"))), "{why}");
            assert!(why.contains("`now`"), "{why}");
            assert!(why.contains("does not offer"), "{why}");
            assert!(!why.contains("mirror"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // A plugin importing nothing of the host's needs nothing offered, and
    // what is offered beyond its imports is no error.
    let mut shapes = Plugin::new(wsandbox_guests::SHAPES, Policy::default())
        .binary(env!("CARGO_BIN_EXE_wsandbox"))
        .cache(false)
        .host_fn("unused", |_| Ok(vec![]));
    assert_eq!(shapes.call("counter", &[]).unwrap(), vec![Val::U32(1)]);
}

/// The time a host function takes counts against the call's limit: past
/// it, the call fails with Timeout and its worker is gone.
#[test]
fn a_host_function_that_takes_too_long_times_the_call_out() {
    let mut plugin = hosted(Arc::default())
        .call_timeout(Duration::from_millis(500))
        .host_fn(host("tick"), |_| {
            std::thread::sleep(Duration::from_millis(300));
            Ok(vec![Val::U64(1)])
        });
    // One tick fits in the limit; ten (3 s) do not, and the call ends
    // once the host function that passed the limit returns.
    assert_eq!(plugin.call("ticks", &[Val::U32(1)]).unwrap(), vec![Val::U64(1)]);
    let pid = plugin.worker_pid().unwrap();
    let started = Instant::now();
    match plugin.call("ticks", &[Val::U32(10)]) {
        Err(PluginError::Timeout(limit)) => assert_eq!(limit, Duration::from_millis(500)),
        other => panic!("{other:?}"),
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(!alive(pid), "the timed-out worker is gone");
    assert_eq!(plugin.call("clock", &[]).unwrap(), vec![Val::U64(42)]);
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

/// The plugin world's `log` may be offered by the host, and then goes to
/// the host instead of stderr.
#[test]
fn the_host_may_take_the_plugin_worlds_log_over() {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&lines);
    let mut plugin = Plugin::new(wsandbox_guests::WORDS, Policy::default())
        .binary(env!("CARGO_BIN_EXE_wsandbox"))
        .cache(false)
        .host_fn("wsandbox:plugin/host@0.1.0.log", move |args| {
            seen.lock().unwrap().push(args.to_vec());
            Ok(vec![])
        });
    plugin.handle(b"the cat saw the dog").unwrap().unwrap();
    let lines = lines.lock().unwrap();
    assert!(!lines.is_empty(), "the host got the plugin's log lines");
    assert!(
        lines
            .iter()
            .all(|args| matches!(args.as_slice(), [Val::Enum(_), Val::String(_)])),
        "{lines:?}"
    );
}

/// A plugin may be given as bytes: it runs as from a file, and its
/// content hash names it in errors.
#[test]
fn a_plugin_loads_from_bytes_named_by_its_hash() {
    let bytes = std::fs::read(wsandbox_guests::SHAPES).unwrap();
    let mut plugin = Plugin::from_bytes(bytes.clone(), Policy::default())
        .binary(env!("CARGO_BIN_EXE_wsandbox"))
        .cache(false);
    let hash = plugin.hash().unwrap().to_string();
    assert_eq!(hash.len(), 64);
    assert_eq!(plugin.call("counter", &[]).unwrap(), vec![Val::U32(1)]);
    assert_eq!(
        plugin.call("greet", &[Val::String("bytes".into())]).unwrap(),
        vec![Val::String("Hello, bytes!".into())]
    );
    // Text works too, and garbage is refused naming its hash.
    let wat = "(component)";
    let mut text = Plugin::from_bytes(wat, Policy::default()).binary(env!("CARGO_BIN_EXE_wsandbox"));
    assert_eq!(text.exports().unwrap(), vec![]);
    let mut garbage = Plugin::from_bytes(vec![0xde, 0xad, 0xbe, 0xef], Policy::default())
        .binary(env!("CARGO_BIN_EXE_wsandbox"));
    let short = &garbage.hash().unwrap()[..16].to_string();
    match garbage.exports() {
        Err(PluginError::Start(why)) => {
            assert!(why.contains(&format!("sha256:{short}: invalid module")), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

/// The entries of a compilation cache: its files but the key.
fn entries(cache: &std::path::Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // Not the key, a file being named, or the engine's remembered hash.
        .filter(|name| name != "key" && !name.starts_with('.') && !name.starts_with("engine-"))
        .collect()
}

/// Workers of one component share its compiled code: the first names the
/// cache entry as soon as it wrote it, while it still runs, and the next
/// worker takes it from there.
#[test]
fn workers_share_the_compilation_cache_while_they_run() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("wsandbox");
    let plugin = || {
        Plugin::new(wsandbox_guests::SHAPES, Policy::default())
            .binary(env!("CARGO_BIN_EXE_wsandbox"))
            .cache_dir(&dir)
    };
    let mut first = plugin();
    first.start().unwrap();
    // The supervisor names it as it reads the sandbox's word, which may
    // come a moment after the worker said it was ready.
    let until = Instant::now() + Duration::from_secs(5);
    while entries(&dir).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let named = entries(&dir);
    assert_eq!(named.len(), 1, "named while the first worker runs: {named:?}");
    let mut second = plugin();
    second.start().unwrap();
    assert_eq!(entries(&dir), named, "the second worker compiled nothing new");
    assert_eq!(second.call("counter", &[]).unwrap(), vec![Val::U32(1)]);
    assert!(first.worker_pid().is_some());
}
