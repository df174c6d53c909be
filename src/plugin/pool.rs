//! Several workers of one plugin, for a host program that calls it from
//! many threads or tasks at once.

use super::{Plugin, PluginError, Val};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a call waits for an idle worker unless told.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// A pool of workers of one plugin: each call goes to an idle worker (one
/// that has run before, if any is idle), waiting at most
/// [`PluginPool::queue_timeout`] for one. A worker is started on first
/// use (or by [`PluginPool::start`]), and replaced by a fresh one after a
/// trap, a timeout, its death or [`PluginPool::max_calls`] calls. Cloning
/// a pool shares it.
///
/// Each worker keeps its own instance, so state a plugin keeps between
/// calls is a worker's, not the pool's.
///
/// ```no_run
/// use wsandbox::Policy;
/// use wsandbox::plugin::{Plugin, PluginPool, Val};
///
/// let plugin = Plugin::new("words.wasm", Policy::default())
///     .call_timeout(std::time::Duration::from_secs(2));
/// let pool = PluginPool::new(plugin, 4).max_calls(10_000);
/// std::thread::scope(|threads| {
///     for _ in 0..8 {
///         threads.spawn(|| pool.handle(b"the cat saw the dog"));
///     }
/// });
/// ```
#[derive(Clone, Debug)]
pub struct PluginPool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    idle: Mutex<Vec<Slot>>,
    freed: Condvar,
    workers: usize,
    /// In nanoseconds.
    queue_timeout: AtomicU64,
    /// 0: no limit.
    max_calls: AtomicU64,
}

/// A worker of the pool, and the calls it made.
#[derive(Debug)]
struct Slot {
    plugin: Plugin,
    calls: u64,
}

impl PluginPool {
    /// A pool of `workers` (at least one) workers of `plugin`, each with its
    /// settings (policy, host functions, time limits, name, ...).
    pub fn new(plugin: Plugin, workers: usize) -> PluginPool {
        let workers = workers.max(1);
        let idle = (0..workers)
            .map(|_| Slot {
                plugin: plugin.fresh(),
                calls: 0,
            })
            .collect();
        PluginPool {
            shared: Arc::new(Shared {
                idle: Mutex::new(idle),
                freed: Condvar::new(),
                workers,
                queue_timeout: AtomicU64::new(QUEUE_TIMEOUT.as_nanos() as u64),
                max_calls: AtomicU64::new(0),
            }),
        }
    }

    /// Bounds how long a call waits for an idle worker (default
    /// [`QUEUE_TIMEOUT`], 30 s): past it, the call fails with
    /// [`PluginError::Busy`].
    pub fn queue_timeout(self, limit: Duration) -> PluginPool {
        let nanos = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        self.shared.queue_timeout.store(nanos, Ordering::Relaxed);
        self
    }

    /// Replaces a worker with a fresh one (a fresh instance, its state
    /// gone) after it made `calls` calls.
    pub fn max_calls(self, calls: u64) -> PluginPool {
        self.shared.max_calls.store(calls, Ordering::Relaxed);
        self
    }

    /// How many workers the pool has.
    pub fn workers(&self) -> usize {
        self.shared.workers
    }

    /// Starts every idle worker not running yet, all at once; the first
    /// error, if one could not start.
    pub fn start(&self) -> Result<(), PluginError> {
        let mut slots = std::mem::take(&mut *self.lock());
        let started: Vec<Result<(), PluginError>> = std::thread::scope(|threads| {
            let starting: Vec<_> = slots
                .iter_mut()
                .map(|slot| threads.spawn(|| slot.plugin.start()))
                .collect();
            starting
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|_| Err(PluginError::Start("a starting thread panicked".into())))
                })
                .collect()
        });
        self.lock().append(&mut slots);
        self.shared.freed.notify_all();
        started.into_iter().collect()
    }

    /// The process ids of the idle workers that run (for watching them
    /// from outside).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.lock()
            .iter()
            .filter_map(|slot| slot.plugin.worker_pid())
            .collect()
    }

    /// [`Plugin::call`] on an idle worker.
    pub fn call(&self, name: &str, args: &[Val]) -> Result<Vec<Val>, PluginError> {
        self.with_worker(|plugin| plugin.call(name, args))
    }

    /// [`Plugin::handle`] on an idle worker.
    pub fn handle(&self, input: &[u8]) -> Result<Result<Vec<u8>, String>, PluginError> {
        self.with_worker(|plugin| plugin.handle(input))
    }

    /// [`PluginPool::call`] without blocking the async runtime it is
    /// awaited on (tokio's): the call runs on the runtime's blocking
    /// threads, a waiting one for at most the queue timeout.
    pub async fn call_async(&self, name: impl Into<String>, args: Vec<Val>) -> Result<Vec<Val>, PluginError> {
        let (pool, name) = (self.clone(), name.into());
        blocking(move || pool.call(&name, &args)).await
    }

    /// [`PluginPool::handle`] without blocking the async runtime.
    pub async fn handle_async(&self, input: Vec<u8>) -> Result<Result<Vec<u8>, String>, PluginError> {
        let pool = self.clone();
        blocking(move || pool.handle(&input)).await
    }

    /// Runs `work` with an idle worker, and gives the worker back (stopped
    /// after its last call, for a fresh one to start on the next).
    fn with_worker<R>(
        &self,
        work: impl FnOnce(&mut Plugin) -> Result<R, PluginError>,
    ) -> Result<R, PluginError> {
        let mut slot = self.acquire()?;
        let returned = work(&mut slot.0.as_mut().expect("held").plugin);
        let held = slot.0.as_mut().expect("held");
        held.calls += 1;
        let max_calls = self.shared.max_calls.load(Ordering::Relaxed);
        if held.plugin.worker_pid().is_none() || (max_calls > 0 && held.calls >= max_calls) {
            held.plugin.stop();
            held.calls = 0;
        }
        returned
    }

    /// An idle worker, once there is one (at most the queue timeout).
    fn acquire(&self) -> Result<Held<'_>, PluginError> {
        let limit = Duration::from_nanos(self.shared.queue_timeout.load(Ordering::Relaxed));
        let until = Instant::now() + limit;
        let mut idle = self.lock();
        loop {
            // The most recently used first: it runs already.
            if let Some(slot) = idle.pop() {
                return Ok(Held(Some(slot), self));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(PluginError::Busy {
                    workers: self.shared.workers,
                    waited: limit,
                });
            }
            idle = self
                .shared
                .freed
                .wait_timeout(idle, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.shared.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A worker taken from the pool, given back when dropped.
struct Held<'a>(Option<Slot>, &'a PluginPool);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            let mut idle = self.1.lock();
            // Workers that run go last, to be taken first.
            match slot.plugin.worker_pid() {
                Some(_) => idle.push(slot),
                None => idle.insert(0, slot),
            }
            drop(idle);
            self.1.shared.freed.notify_one();
        }
    }
}

/// Runs `work` on the tokio runtime's blocking threads.
async fn blocking<R: Send + 'static>(
    work: impl FnOnce() -> Result<R, PluginError> + Send + 'static,
) -> Result<R, PluginError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(PluginError::Died(format!("the call's thread ended: {e}"))))
}
