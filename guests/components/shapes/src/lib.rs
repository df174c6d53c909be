//! The `shapes` test component: every shape of value through `call`, a
//! counter whose state lives as long as its instance, a trap and a loop.

wit_bindgen::generate!({ world: "shapes", path: "wit" });

use exports::wsandbox::shapes::values::{Color, Perms, Point, Shape};
use std::sync::atomic::{AtomicU32, Ordering};

struct Shapes;

static CALLS: AtomicU32 = AtomicU32::new(0);

impl Guest for Shapes {
    fn greet(name: String) -> String {
        format!("Hello, {name}!")
    }

    fn counter() -> u32 {
        CALLS.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn crash() {
        panic!("crash was called");
    }

    #[allow(clippy::empty_loop)]
    fn spin() {
        loop {
            std::hint::black_box(());
        }
    }
}

impl exports::wsandbox::shapes::values::Guest for Shapes {
    fn echo_string(s: String) -> String {
        s
    }

    fn add(a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }

    fn add_wide(a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }

    fn scale(x: f64, by: f32) -> f64 {
        x * f64::from(by)
    }

    fn negate(b: bool) -> bool {
        !b
    }

    fn norm(p: Point) -> Point {
        Point {
            x: p.x.abs(),
            y: p.y.abs(),
        }
    }

    fn area(s: Shape) -> f64 {
        match s {
            Shape::Circle(r) => std::f64::consts::PI * r * r,
            Shape::Rect(p) => f64::from(p.x) * f64::from(p.y),
            Shape::Empty => 0.0,
        }
    }

    fn next_color(c: Color) -> Color {
        match c {
            Color::Red => Color::Green,
            Color::Green => Color::Blue,
            Color::Blue => Color::Red,
        }
    }

    fn allow(p: Perms, extra: Perms) -> Perms {
        p | extra
    }

    fn increment(x: Option<u32>) -> Option<u32> {
        x.and_then(|x| x.checked_add(1))
    }

    fn divide(a: i32, b: i32) -> Result<i32, String> {
        a.checked_div(b).ok_or_else(|| format!("cannot divide {a} by {b}"))
    }

    fn reverse(l: Vec<String>) -> Vec<String> {
        l.into_iter().rev().collect()
    }

    fn swap(t: (u8, String)) -> (String, u8) {
        (t.1, t.0)
    }

    fn first_char(s: String) -> Option<char> {
        s.chars().next()
    }

    fn bytes(n: u32) -> Vec<u8> {
        (0..n).map(|i| i as u8).collect()
    }
}

export!(Shapes);
