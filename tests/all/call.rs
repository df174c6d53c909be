//! `wsandbox call`: one export called with WAVE arguments, its result
//! printed in WAVE; `--list`; the exit codes of a call that fails.

use crate::{Output, run, s};

/// `wsandbox call [OPTIONS...] MODULE EXPR`.
fn call(module: &str, expr: &str, options: &[&str]) -> Output {
    let mut args = vec!["call"];
    args.extend_from_slice(options);
    args.extend([module, expr]);
    run(&args)
}

fn shapes() -> &'static str {
    wsandbox_guests::SHAPES
}

/// Every shape of value goes in and comes back out as WAVE.
#[test]
fn every_shape_of_value_round_trips() {
    let cases: &[(&str, &str)] = &[
        (r#"greet("world")"#, r#""Hello, world!""#),
        (
            r#"values.echo-string("h\u{e9}llo \"q\" \n")"#,
            r#""héllo \"q\" \n""#,
        ),
        ("values.add(2, -5)", "-3"),
        ("values.add(2147483647, 1)", "-2147483648"),
        ("values.add-wide(18446744073709551615, 2)", "1"),
        ("values.scale(1.5, 3)", "4.5"),
        ("values.negate(true)", "false"),
        ("values.norm({x: -1, y: 2})", "{x: 1, y: 2}"),
        ("values.area(rect({x: 2, y: 3}))", "6"),
        ("values.area(empty)", "0"),
        ("values.next-color(blue)", "red"),
        ("values.allow({read}, {exec})", "{read, exec}"),
        ("values.allow({}, {})", "{}"),
        ("values.increment(some(41))", "some(42)"),
        ("values.increment(none)", "none"),
        ("values.divide(7, 2)", "ok(3)"),
        (r#"values.reverse(["a", "b", "c"])"#, r#"["c", "b", "a"]"#),
        ("values.reverse([])", "[]"),
        (r#"values.swap((7, "x"))"#, r#"("x", 7)"#),
        (r#"values.first-char("ünï")"#, "some('ü')"),
        (r#"values.first-char("")"#, "none"),
        ("values.bytes(3)", "[0, 1, 2]"),
        // The interface named in full, with its package.
        ("wsandbox:shapes/values.add(1, 1)", "2"),
        // State does not outlive a call: each call is a fresh instance.
        ("counter()", "1"),
    ];
    for (expr, want) in cases {
        let out = call(shapes(), expr, &[]);
        out.assert_code(0);
        assert_eq!(out.stdout, format!("{want}\n"), "{expr}: {out:#?}");
        assert_eq!(out.stderr, "", "{expr}");
    }
}

#[test]
fn core_modules_take_and_return_numbers() {
    let math = wsandbox_guests::wat("math");
    for (expr, want) in [
        // `_initialize` ran first: it sets the base to 0.
        ("add(2, 3)", "5"),
        ("add(-2, 1)", "-1"),
        ("wide(5000000)", "5000000000000"),
        ("half(5)", "2.5"),
        ("divmod(7, 2)", "(3, 1)"),
    ] {
        let out = call(&math, expr, &[]);
        out.assert_code(0);
        assert_eq!(out.stdout, format!("{want}\n"), "{expr}: {out:#?}");
    }
    // A trap in a core export is a trap.
    call(&math, "divmod(1, 0)", &[]).assert_code(134);
}

/// A returned `err` is printed and the call exits 1.
#[test]
fn a_returned_err_exits_1() {
    let out = call(shapes(), "values.divide(1, 0)", &[]);
    out.assert_code(1);
    assert_eq!(out.stdout, "err(\"cannot divide 1 by 0\")\n");
    assert_eq!(out.stderr, "");
}

/// A call that does not fit the module is a usage error (exit 2) whose one
/// line shows what the module offers.
#[test]
fn calls_that_do_not_fit_exit_2_with_the_signature() {
    let cases: &[(&str, &[&str])] = &[
        (
            "nope()",
            &["no exported function \"nope\"", "greet", "values.add"],
        ),
        ("values.add(1)", &["values.add: func(a: s32, b: s32) -> s32"]),
        (
            "values.add(1, 2, 3)",
            &["values.add: func(a: s32, b: s32) -> s32"],
        ),
        (
            r#"values.add("1", 2)"#,
            &["values.add: func(a: s32, b: s32) -> s32"],
        ),
        ("values.add(1.5, 2)", &["func(a: s32, b: s32)"]),
        ("values.norm({x: 1})", &["func(p: record { x: s32, y: s32 })"]),
        ("values.next-color(purple)", &["enum { red, green, blue }"]),
        ("greet", &["not a call", "NAME(ARGS...)"]),
        ("greet(\"unclosed)", &["not WAVE"]),
    ];
    for (expr, words) in cases {
        let out = call(shapes(), expr, &[]);
        out.assert_one_line_error(2, words);
        assert_eq!(out.stdout, "", "{expr}");
    }
    // A core module's exports are named too.
    let out = call(&wsandbox_guests::wat("math"), "sub(1, 2)", &[]);
    out.assert_one_line_error(2, &["add", "divmod", "half"]);
}

#[test]
fn traps_and_limits_end_a_call_as_they_end_a_run() {
    let out = call(shapes(), "crash()", &[]);
    out.assert_code(134);
    // The guest's own panic message, then wsandbox's line and the backtrace.
    assert!(
        out.stderr.contains("crash was called"),
        "the panic message: {out:#?}"
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("wsandbox: guest trapped: ")),
        "{out:#?}"
    );
    let out = call(shapes(), "spin()", &["--timeout", "500ms"]);
    out.assert_code(124);
    assert!(out.stderr.contains("--timeout 500ms"), "{out:#?}");
    let out = call(shapes(), "spin()", &["--fuel", "1000000"]);
    out.assert_code(124);
    assert!(out.stderr.contains("out of fuel"), "{out:#?}");
    let out = call(shapes(), "values.bytes(100000000)", &["--memory", "16M"]);
    out.assert_code(134);
    assert!(out.stderr.contains("--memory 16M"), "{out:#?}");
}

/// The call runs inside the walls, with the options of `run`, and is
/// reported like a run.
#[test]
fn a_call_is_walled_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = call(shapes(), "values.add(1, 2)", &["--report", s(&report)]);
    out.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["outcome"], "exited", "{json}");
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["module"]["kind"], "component");
    assert_eq!(json["isolation"]["seccomp"], true, "{json}");
    assert_eq!(
        json["isolation"]["namespaces"].as_array().unwrap().len(),
        7,
        "{json}"
    );
}

#[test]
fn list_shows_every_export_in_wit_syntax() {
    let out = run(&["call", "--list", shapes()]);
    out.assert_code(0);
    for line in [
        "greet: func(name: string) -> string",
        "counter: func() -> u32",
        "crash: func()",
        "wsandbox:shapes/values.add: func(a: s32, b: s32) -> s32",
        "wsandbox:shapes/values.norm: func(p: record { x: s32, y: s32 }) -> record { x: s32, y: s32 }",
        "wsandbox:shapes/values.area: func(s: variant { circle(f64), rect(record { x: s32, y: s32 }), empty }) -> f64",
        "wsandbox:shapes/values.increment: func(x: option<u32>) -> option<u32>",
        "wsandbox:shapes/values.divide: func(a: s32, b: s32) -> result<s32, string>",
        "wsandbox:shapes/values.swap: func(t: tuple<u8, string>) -> tuple<string, u8>",
        "wsandbox:shapes/values.allow: func(p: flags { read, write, exec }, extra: flags { read, write, exec }) -> flags { read, write, exec }",
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{}",
            out.stdout
        );
    }
    let out = run(&["call", "--list", &wsandbox_guests::wat("math")]);
    out.assert_code(0);
    assert!(
        out.stdout.contains("add: func(p0: s32, p1: s32) -> s32\n"),
        "{out:#?}"
    );
    assert!(
        out.stdout
            .contains("divmod: func(p0: s32, p1: s32) -> tuple<s32, s32>\n"),
        "{out:#?}"
    );
    // The runtime's plumbing is neither offered nor called: `_initialize`
    // runs once, before the call, and never as the call.
    for plumbing in ["_initialize", "cabi_realloc"] {
        assert!(!out.stdout.contains(plumbing), "{out:#?}");
    }
    let math = wsandbox_guests::wat("math");
    let out = call(&math, "_initialize()", &[]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("no exported function \"_initialize\""),
        "{out:#?}"
    );
    call(&math, "cabi_realloc(0, 0, 1, 8)", &[]).assert_code(2);
    // Neither a call nor --list: a usage error.
    run(&["call", shapes()]).assert_code(2);
    run(&["call", "--list", shapes(), "greet(\"x\")"]).assert_code(2);
}

/// The example plugin answers the plugin world's functions, and logs
/// through the host.
#[test]
fn the_example_plugin_is_callable() {
    let words = wsandbox_guests::WORDS;
    let out = call(words, "guest.metadata()", &[]);
    out.assert_code(0);
    assert!(
        out.stdout
            .starts_with("{name: \"words\", version: \"1.0.0\", description: "),
        "{out:#?}"
    );
    // "hi hi" as bytes.
    let out = call(words, "guest.handle([104, 105, 32, 104, 105])", &[]);
    out.assert_code(0);
    assert!(out.stdout.starts_with("ok(["), "{out:#?}");
    assert_eq!(out.stderr, "plugin: info: 5 bytes, 2 words\n");
    let out = call(words, "guest.handle([255])", &[]);
    out.assert_code(1);
    assert!(out.stdout.starts_with("err(\"the input is not UTF-8"), "{out:#?}");
}
