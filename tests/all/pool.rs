//! Pools of plugin workers (`wsandbox::plugin::PluginPool`): every worker
//! kept busy under more callers than workers, every call answered, a
//! bounded wait, workers replaced after a death, a timeout or their last
//! call, and async calls that leave their runtime free.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wsandbox::Policy;
use wsandbox::plugin::{Plugin, PluginError, PluginPool, Val};

fn shapes() -> Plugin {
    Plugin::new(wsandbox_guests::SHAPES, Policy::default()).binary(env!("CARGO_BIN_EXE_wsandbox"))
}

/// How many calls of a host function run at once, and the most that did.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

/// The `hosted` plugin whose `plain` takes `pause` in the host, counted
/// in `in_flight`.
fn slow_hosted(pause: Duration, in_flight: Arc<InFlight>) -> Plugin {
    let host = |name: &str| format!("wsandbox:hosted/host.{name}");
    Plugin::new(wsandbox_guests::HOSTED, Policy::default())
        .binary(env!("CARGO_BIN_EXE_wsandbox"))
        .host_fn(host("plain"), move |args| {
            let now = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
            in_flight.most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(pause);
            in_flight.now.fetch_sub(1, Ordering::SeqCst);
            match args {
                [Val::U32(n)] => Ok(vec![Val::U32(n * 2)]),
                _ => Err("not a u32".into()),
            }
        })
        .host_fn(host("mirror"), |args| Ok(args.to_vec()))
        .host_fn(host("checked"), |args| Ok(args.to_vec()))
        .host_fn(host("tick"), |_| Ok(vec![Val::U64(0)]))
        .host_fn("now", |_| Ok(vec![Val::U64(0)]))
}

/// 8 callers on 4 workers: all 4 are busy at once (never more), and every
/// call gets its own answer.
#[test]
fn a_pool_under_8_callers_keeps_every_worker_busy_and_answers_every_call() {
    let in_flight = Arc::new(InFlight::default());
    let pool = PluginPool::new(slow_hosted(Duration::from_millis(50), Arc::clone(&in_flight)), 4);
    pool.start().unwrap();
    assert_eq!(pool.worker_pids().len(), 4);
    let answered = AtomicUsize::new(0);
    std::thread::scope(|threads| {
        for caller in 0..8u32 {
            let (pool, answered) = (&pool, &answered);
            threads.spawn(move || {
                for call in 0..5u32 {
                    let n = caller * 100 + call;
                    assert_eq!(pool.call("plain", &[Val::U32(n)]).unwrap(), vec![Val::U32(2 * n)]);
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(answered.load(Ordering::SeqCst), 40);
    assert_eq!(
        in_flight.most.load(Ordering::SeqCst),
        4,
        "every worker was busy at once"
    );
    assert_eq!(pool.worker_pids().len(), 4, "no worker was lost");
}

/// A call waits for an idle worker at most the queue timeout.
#[test]
fn a_call_waits_for_an_idle_worker_at_most_its_queue_timeout() {
    let pool = PluginPool::new(shapes().call_timeout(Duration::from_secs(3)), 1)
        .queue_timeout(Duration::from_millis(300));
    pool.start().unwrap();
    std::thread::scope(|threads| {
        let busy = threads.spawn(|| pool.call("spin", &[]));
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        match pool.call("counter", &[]) {
            Err(PluginError::Busy { workers: 1, waited }) => {
                assert_eq!(waited, Duration::from_millis(300))
            }
            other => panic!("{other:?}"),
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert!(matches!(busy.join().unwrap(), Err(PluginError::Timeout(_))));
    });
    // The spinning worker was replaced: the next call is answered.
    assert_eq!(pool.call("counter", &[]).unwrap(), vec![Val::U32(1)]);
}

/// A worker killed in the middle of a pooled call fails that call only;
/// it is replaced, and the next calls succeed.
#[test]
fn a_worker_killed_in_the_middle_of_a_pooled_call_is_replaced() {
    let pool = PluginPool::new(shapes().call_timeout(Duration::from_secs(10)), 2);
    pool.start().unwrap();
    let pids = pool.worker_pids();
    assert_eq!(pids.len(), 2);
    let killed = std::thread::scope(|threads| {
        let spinning = threads.spawn(|| pool.call("spin", &[]));
        std::thread::sleep(Duration::from_millis(300));
        let idle = pool.worker_pids();
        assert_eq!(idle.len(), 1);
        let busy = pids.iter().find(|pid| !idle.contains(pid)).copied().unwrap();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(busy as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        // The other worker answers meanwhile.
        assert!(pool.call("counter", &[]).is_ok());
        match spinning.join().unwrap() {
            Err(PluginError::Died(_)) => {}
            other => panic!("{other:?}"),
        }
        busy
    });
    for _ in 0..4 {
        assert!(pool.call("counter", &[]).is_ok());
    }
    // A fresh worker takes the dead one's place (when it is needed, or
    // started).
    pool.start().unwrap();
    let now = pool.worker_pids();
    assert_eq!(now.len(), 2);
    assert!(!now.contains(&killed), "{now:?}");
}

/// After its last call a worker is replaced by a fresh one: its state
/// starts over.
#[test]
fn a_worker_is_replaced_after_its_last_call() {
    let pool = PluginPool::new(shapes(), 1).max_calls(3);
    let counts: Vec<Val> = (0..7)
        .map(|_| pool.call("counter", &[]).unwrap().remove(0))
        .collect();
    let want = [1, 2, 3, 1, 2, 3, 1].map(Val::U32);
    assert_eq!(counts, want);
}

/// Awaited calls leave the runtime free: a single-threaded runtime keeps
/// ticking while four calls of 200 ms run on two workers.
#[test]
fn async_calls_leave_their_runtime_free() {
    let in_flight = Arc::new(InFlight::default());
    let pool = PluginPool::new(slow_hosted(Duration::from_millis(200), Arc::clone(&in_flight)), 2);
    pool.start().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (answers, ticks) = runtime.block_on(async {
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let calls: Vec<_> = (0..4u32)
            .map(|n| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.call_async("plain", vec![Val::U32(n)]).await })
            })
            .collect();
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await.unwrap().unwrap());
        }
        ticker.abort();
        (answers, ticks.load(Ordering::SeqCst))
    });
    assert_eq!(
        answers,
        (0..4u32).map(|n| vec![Val::U32(2 * n)]).collect::<Vec<_>>()
    );
    assert!(ticks >= 10, "the runtime ticked {ticks} times in 400 ms");
    assert_eq!(in_flight.most.load(Ordering::SeqCst), 2);
    let handled = runtime
        .block_on(PluginPool::new(shapes(), 1).handle_async(b"x".to_vec()))
        .unwrap_err();
    assert!(matches!(handled, PluginError::Call(_)), "{handled:?}");
}
