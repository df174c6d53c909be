//! A server of several functions (`[[serve.routes]]` in a policy file):
//! each route answered by its own component with its own limits, grants
//! and environment, the longest prefix first; a path no route covers gets
//! 404; one engine, one sandbox, each component compiled once and then
//! taken from the cache; a route that cannot be loaded stops the start
//! with one line that names it.

use crate::serve::{Server, request};
use crate::{run, s, wsandbox};
use std::path::Path;
use std::time::{Duration, Instant};
use wsandbox_guests::{API, PROBE_HTTP};

/// A policy file in `dir` holding `text` (after the top-level keys,
/// `ROUTES`), with the probe copied beside it as `probe.wasm` and a
/// directory `data` holding `secret.txt`.
fn policy_in(dir: &Path, text: &str) -> String {
    std::fs::copy(PROBE_HTTP, dir.join("probe.wasm")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/secret.txt"), "for the probe only\n").unwrap();
    let file = dir.join("routes.toml");
    std::fs::write(&file, text).unwrap();
    s(&file).to_owned()
}

/// `wsandbox serve --addr 127.0.0.1:0 OPTIONS --config FILE`.
fn serve_routes(file: &str, options: &[&str]) -> Server {
    let mut cmd = wsandbox();
    cmd.args(["serve", "--addr", "127.0.0.1:0"])
        .args(options)
        .args(["--config", file]);
    Server::spawn(cmd)
}

/// Three functions: the example API at `/`, the probe (relative to the
/// file) at `/probe` with a memory limit, a short timeout, a directory and
/// a variable of its own, and the probe again at `/other` with the
/// policy's own limits and grants only.
fn three_routes() -> String {
    format!(
        r#"
timeout = "10s"
env = [{{ name = "SHARED", value = "every route" }}]

[[serve.routes]]
prefix = "/"
component = "{API}"

[[serve.routes]]
prefix = "/probe"
component = "probe.wasm"
memory = "16M"
timeout = "1s"
env = [{{ name = "PROBE_PREFIX", value = "/probe" }}, {{ name = "SECRET", value = "probe only" }}]
dirs = [{{ host = "data", guest = "/data", access = "read-only" }}]

[[serve.routes]]
prefix = "/other/"
component = "{PROBE_HTTP}"
env = [{{ name = "PROBE_PREFIX", value = "/other" }}]
"#
    )
}

#[test]
fn each_route_is_answered_by_its_own_component_with_its_own_limits_and_grants() {
    let dir = tempfile::tempdir().unwrap();
    let file = policy_in(dir.path(), &three_routes());
    let server = serve_routes(&file, &[]);
    // The API at `/`, and everything no longer prefix covers.
    let hello = server.get("/hello/ada").assert(200).text();
    assert!(hello.contains(r#""greeting": "Hello, ada!""#), "{hello}");
    let beside = server.get("/probex").assert(404).text();
    assert!(beside.contains(r#""error""#), "the API answers /probex: {beside}");
    // The probe at `/probe`, which sees the whole path.
    assert_eq!(server.get("/probe").assert(200).text(), "hello\n");
    assert_eq!(server.get("/probe/path").assert(200).text(), "/probe/path\n");
    assert_eq!(server.get("/other/path").assert(200).text(), "/other/path\n");
    // Its limits: 16M of memory, a second of time; the other probe has
    // the policy's (no memory limit, ten seconds).
    server.get("/probe/grow?mb=4").assert(200);
    server.get("/probe/grow?mb=64").assert(500);
    server.get("/other/grow?mb=64").assert(200);
    let start = Instant::now();
    server.get("/probe/sleep?ms=4000").assert(504);
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    assert_eq!(server.get("/other/sleep?ms=1500").assert(200).text(), "slept\n");
    // Its grants and variables are its own; the policy's are everyone's.
    assert_eq!(
        server.get("/probe/file?path=/data/secret.txt").assert(200).text(),
        "for the probe only\n"
    );
    server.get("/other/file?path=/data/secret.txt").assert(404);
    assert_eq!(
        server.get("/probe/env?name=SECRET").assert(200).text(),
        "probe only"
    );
    server.get("/other/env?name=SECRET").assert(404);
    assert_eq!(
        server.get("/other/env?name=SHARED").assert(200).text(),
        "every route"
    );
    assert_eq!(
        server.get("/probe/env?name=SHARED").assert(200).text(),
        "every route"
    );
    // One sandbox serves them all.
    let pid = server.sandboxed_pid();
    assert!(pid > 0);
}

#[test]
fn a_path_no_route_covers_gets_404_from_the_server_and_counts_as_route_none() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[[serve.routes]]
prefix = "/probe"
component = "probe.wasm"
env = [{ name = "PROBE_PREFIX", value = "/probe" }]
"#;
    let file = policy_in(dir.path(), text);
    let server = serve_routes(&file, &["--admin-addr", "127.0.0.1:0"]);
    let admin = server
        .logged("admin: http://")
        .lines()
        .find_map(|l| l.strip_prefix("admin: http://"))
        .unwrap()
        .to_owned();
    assert_eq!(server.get("/probe/").assert(200).text(), "hello\n");
    for path in ["/", "/prob", "/probes/x", "/index.html"] {
        let text = server.get(path).assert(404).text();
        assert!(
            text.starts_with("no function answers this path (request "),
            "{path}: {text}"
        );
    }
    // The log says which routes there are.
    server.logged("404: no route covers this path (routes: /probe)");
    let start = Instant::now();
    loop {
        let metrics = request(&admin, "GET", "/metrics", &[]).text();
        let counted = |line: &str| metrics.lines().any(|l| l == line);
        if counted(r#"wsandbox_http_requests_total{route="none",status="404"} 4"#)
            && counted(r#"wsandbox_http_requests_total{route="/probe",status="200"} 1"#)
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn each_component_is_compiled_once_then_taken_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let file = policy_in(dir.path(), &three_routes());
    let started = |server: &Server, how: &str| {
        server.get("/probe").assert(200);
        server.log().lines().filter(|l| l.contains(how)).count()
    };
    let options = ["-v", "--cache-dir", s(cache.path())];
    let first = serve_routes(&file, &options);
    // The probe is one file at two routes, compiled for each.
    assert_eq!(started(&first, ") compiled: "), 3, "{}", first.log());
    // The entries are named as soon as the supervisor reads the sandbox's
    // word that it wrote them, while the first server runs (two: the api
    // and the probe, one file's bytes at two routes)...
    let named = || {
        let names = std::fs::read_dir(cache.path()).unwrap();
        names
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
            .count()
    };
    let start = Instant::now();
    while named() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", first.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    // ...and a second server beside it compiles nothing.
    let second = serve_routes(&file, &options);
    assert_eq!(
        started(&second, ") loaded from the cache: "),
        3,
        "{}",
        second.log()
    );
    assert_eq!(started(&second, ") compiled: "), 0, "{}", second.log());
    first.get("/probe").assert(200);
}

#[test]
fn a_route_that_cannot_be_served_stops_the_start_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let core = wsandbox_guests::HELLO_P1;
    let route = |extra: &str| {
        format!(
            "[[serve.routes]]\nprefix = \"/fine\"\ncomponent = \"probe.wasm\"\n\n[[serve.routes]]\n{extra}\n"
        )
    };
    let serve = |text: &str| {
        let file = policy_in(dir.path(), text);
        run(&["serve", "--addr", "127.0.0.1:0", "--config", &file])
    };
    // A core module, a component that is no proxy: it cannot run (126).
    serve(&route(&format!("prefix = \"/bad\"\ncomponent = \"{core}\"")))
        .assert_one_line_error(126, &["route /bad: ", "core module"]);
    let words = wsandbox_guests::HELLO_P2;
    serve(&route(&format!("prefix = \"/bad\"\ncomponent = \"{words}\"")))
        .assert_one_line_error(126, &["route /bad: ", "not a wasi:http proxy"]);
    // A missing file: 127, as for any module.
    serve(&route("prefix = \"/gone\"\ncomponent = \"gone.wasm\""))
        .assert_one_line_error(127, &["route /gone: ", "gone.wasm"]);
    // A grant that does not exist.
    serve(&route(
        "prefix = \"/dir\"\ncomponent = \"probe.wasm\"\ndirs = [{ host = \"nowhere\", guest = \"/n\", access = \"read-only\" }]",
    ))
    .assert_one_line_error(125, &["route /dir: ", "nowhere"]);
    // Bad prefixes, twice the same: the policy file's line.
    serve(&route("prefix = \"api\"\ncomponent = \"probe.wasm\""))
        .assert_one_line_error(125, &["line 6", "must start with '/'"]);
    serve(&route("prefix = \"/fine/\"\ncomponent = \"probe.wasm\""))
        .assert_one_line_error(125, &["route /fine: two routes have this prefix"]);
    // The policy as `wsandbox policy` shows it names each component by
    // its absolute path, so that it can be used from anywhere.
    let file = policy_in(dir.path(), &route("prefix = \"/b\"\ncomponent = \"probe.wasm\""));
    let shown = run(&["policy", "--config", &file]);
    shown.assert_code(0);
    let probe = dir.path().join("probe.wasm");
    assert!(
        shown
            .stdout
            .contains(&format!("component = \"{}\"", probe.display())),
        "{}",
        shown.stdout
    );
    // Routes and a COMPONENT, or neither: a usage error.
    let file = policy_in(dir.path(), &route("prefix = \"/b\"\ncomponent = \"probe.wasm\""));
    run(&["serve", "--config", &file, PROBE_HTTP]).assert_one_line_error(2, &["names routes"]);
    run(&["serve"]).assert_one_line_error(2, &["no COMPONENT"]);
}

#[test]
fn an_unprivileged_user_serves_routes() {
    use std::os::unix::fs::PermissionsExt;
    if !crate::am_root() {
        eprintln!("not root: the other tests already serve as an unprivileged user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[[serve.routes]]
prefix = "/"
component = "{api}"

[[serve.routes]]
prefix = "/probe"
component = "{probe}"
memory = "16M"
env = [{{ name = "PROBE_PREFIX", value = "/probe" }}]
dirs = [{{ host = "data", guest = "/data", access = "read-only" }}]
"#,
        api = crate::for_nobody(API),
        probe = crate::for_nobody(PROBE_HTTP),
    );
    let file = policy_in(dir.path(), &text);
    for (path, mode) in [
        (dir.path().to_path_buf(), 0o755),
        (dir.path().join("data"), 0o755),
        (dir.path().join("data/secret.txt"), 0o644),
        (dir.path().join("routes.toml"), 0o644),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let mut cmd = crate::wsandbox_as(crate::Caller::Nobody);
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--config", &file]);
    let server = Server::spawn(cmd);
    assert!(
        server
            .get("/hello/nobody")
            .assert(200)
            .text()
            .contains("Hello, nobody!")
    );
    assert_eq!(
        server.get("/probe/file?path=/data/secret.txt").assert(200).text(),
        "for the probe only\n"
    );
    server.get("/probe/grow?mb=64").assert(500);
    server.get("/probe").assert(200);
}
