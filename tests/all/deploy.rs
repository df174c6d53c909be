//! `deploy/`: the container image builds offline and serves (podman, with
//! the host's network and the pod's settings: the seccomp profile,
//! `/proc` unmasked, a non-root user), answering a request, `/readyz`
//! and `/metrics`, logging JSON lines, and draining on SIGTERM; the
//! Kubernetes manifests (and a ConfigMap made of the example functions)
//! validate against the schemas of Kubernetes 1.32, offline.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `deploy/NAME` of this checkout.
fn deploy(name: &str) -> String {
    format!("{}/deploy/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` to its end; its stdout, or a panic with what it said.
#[track_caller]
fn succeed(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free port of 127.0.0.1 (bound and let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The example functions (the policy file of `deploy/functions` and the
/// example API beside it) in a directory the container's user can read.
fn functions() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        deploy("functions/functions.toml"),
        dir.path().join("functions.toml"),
    )
    .unwrap();
    std::fs::copy(wsandbox_guests::API, dir.path().join("api.wasm")).unwrap();
    for (path, mode) in [
        (dir.path().to_path_buf(), 0o755),
        (dir.path().join("functions.toml"), 0o644),
        (dir.path().join("api.wasm"), 0o644),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    dir
}

/// Removes the container and the image when dropped.
struct Cleanup {
    image: String,
    container: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let podman = deploy("podman.sh");
        if let Some(id) = &self.container {
            let _ = Command::new(&podman).args(["rm", "--force", id]).output();
        }
        let _ = Command::new(&podman)
            .args(["rmi", "--force", &self.image])
            .output();
    }
}

#[test]
fn the_image_builds_offline_and_serves_with_the_pods_settings() {
    if Command::new("podman").arg("--version").output().is_err() {
        panic!("podman is not installed (.ci/run installs it)");
    }
    let image = format!("localhost/wsandbox:test-{}", std::process::id());
    let mut cleanup = Cleanup {
        image: image.clone(),
        container: None,
    };
    let built = succeed(Command::new(deploy("build-image.sh")).args([
        "--binary",
        env!("CARGO_BIN_EXE_wsandbox"),
        "--tag",
        &image,
    ]));
    assert_eq!(built.trim(), image);
    let dir = functions();
    let (port, admin) = (free_port(), free_port());
    let seccomp = format!("seccomp={}", deploy("seccomp/wsandbox.json"));
    let volume = format!("{}:/etc/wsandbox:ro", dir.path().display());
    let id = succeed(Command::new(deploy("podman.sh")).args([
        "run",
        "--detach",
        "--network",
        "host",
        "--security-opt",
        "unmask=/proc/*",
        "--security-opt",
        &seccomp,
        "--cap-drop",
        "all",
        "--read-only",
        "--tmpfs",
        "/var/cache/wsandbox:mode=1777",
        "--volume",
        &volume,
        &image,
        "serve",
        &format!("--addr=127.0.0.1:{port}"),
        &format!("--admin-addr=127.0.0.1:{admin}"),
        "--log-format=json",
        "--config=/etc/wsandbox/functions.toml",
    ]));
    let id = id.trim().to_owned();
    cleanup.container = Some(id.clone());
    let admin = format!("127.0.0.1:{admin}");
    // What the container wrote on stderr (podman logs writes it there too).
    let logs = || {
        let out = Command::new(deploy("podman.sh"))
            .args(["logs", &id])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    // Ready once it accepts.
    let start = Instant::now();
    loop {
        if std::net::TcpStream::connect(&admin).is_ok()
            && crate::serve::request(&admin, "GET", "/readyz", &[]).status == 200
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "not ready: {}", logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let addr = format!("127.0.0.1:{port}");
    let hello = crate::serve::request(&addr, "GET", "/hello/kubernetes", &[]);
    assert!(
        hello.assert(200).text().contains("Hello, kubernetes!"),
        "{}",
        hello.text()
    );
    let start = Instant::now();
    loop {
        let metrics = crate::serve::request(&admin, "GET", "/metrics", &[]).text();
        if metrics
            .lines()
            .any(|l| l == r#"wsandbox_http_requests_total{route="/",status="200"} 1"#)
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // It drains on SIGTERM and exits 0.
    succeed(Command::new(deploy("podman.sh")).args(["stop", "--time", "20", &id]));
    let code =
        succeed(Command::new(deploy("podman.sh")).args(["inspect", "--format", "{{.State.ExitCode}}", &id]));
    assert_eq!(code.trim(), "0", "{}", logs());
    // Every line it wrote is a JSON object; the first says where it listens.
    let logged = logs();
    let lines: Vec<serde_json::Value> = logged
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    assert_eq!(lines[0]["message"], format!("http://{addr}"), "{logged}");
    assert!(
        lines
            .iter()
            .all(|l| l["time"].is_string() && l["level"].is_string()),
        "{logged}"
    );
}

#[test]
fn the_manifests_validate_against_kubernetes_1_32() {
    let dir = tempfile::tempdir().unwrap();
    let functions = functions();
    let configmap = succeed(Command::new(deploy("make-configmap.sh")).arg(functions.path()));
    let file = dir.path().join("configmap.yaml");
    std::fs::write(&file, &configmap).unwrap();
    assert!(configmap.contains("  functions.toml: |"), "{configmap}");
    assert!(
        configmap.contains("binaryData:\n  api.wasm: AGFzbQ"),
        "the component, base64"
    );
    let mut manifests: Vec<String> = std::fs::read_dir(deploy("kubernetes"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| path.display().to_string())
        .collect();
    manifests.sort();
    assert_eq!(manifests.len(), 4, "{manifests:?}");
    manifests.push(file.display().to_string());
    let validate = |files: &[String]| {
        Command::new("kubernetes-validate")
            .args(["-k", "1.32.0", "--strict"])
            .args(files)
            .output()
            .expect("kubernetes-validate (.ci/run installs it with pip)")
    };
    let out = validate(&manifests);
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert_eq!(
        said.matches(" passed for resource ").count(),
        manifests.len(),
        "{said}"
    );
    // A manifest with a field Kubernetes does not know fails: the check
    // can fail.
    let wrong = dir.path().join("wrong.yaml");
    let deployment = std::fs::read_to_string(Path::new(&deploy("kubernetes/deployment.yaml"))).unwrap();
    std::fs::write(
        &wrong,
        deployment.replace("hostUsers: false", "hostUsers: false\n      hostUser: false"),
    )
    .unwrap();
    assert!(!validate(&[wrong.display().to_string()]).status.success());
}
