//! The supervisor: the caller's own process, outside every namespace,
//! after [`super::enter`]. It writes root's child's id maps, lets the
//! sandbox go, forwards SIGINT/SIGTERM/SIGHUP (then `SIGKILL` after a
//! grace period), kills the sandbox at its deadline, and says how it
//! ended, with what it applied, what it said and what it used.

use super::broker::{Broker, Rules};
use super::channel::{Message, Receiver};
use super::idmap::{self, IdMap};
use super::{End, Ending, Isolation, Layer, Prepared, SETUP_FAILED, WallError};
use crate::sys::{self, SysError};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

/// The supervisor's side: the sandbox, not yet let go.
#[derive(Debug)]
pub struct Supervisor {
    child: Pid,
    go: OwnedFd,
    messages: Receiver,
    signals: SigSet,
    lifetime: Lifetime,
    broker: Option<(OwnedFd, Box<Rules>)>,
}

/// How long a sandbox may live: its timeout, and how long it has to end
/// after a forwarded signal.
#[derive(Debug)]
struct Lifetime {
    timeout: Option<std::time::Duration>,
    stop_grace: std::time::Duration,
}

/// Root's parent, after the clone: with its saved uid 0 as effective uid
/// for a moment, writes the child's id maps (when it has a user namespace
/// of its own), then drops uid 0 from every set. Neither process was
/// dumpable at any point.
fn write_child_maps(child: Pid, ids: &IdMap, own_users: bool) -> Result<(), SysError> {
    use nix::unistd::{Uid, setresuid};
    let (root, uid) = (Uid::from_raw(0), Uid::from_raw(ids.host_uid));
    let keep = Uid::from_raw(u32::MAX);
    let written = match own_users {
        true => sys::check(setresuid(keep, root, keep), || "setresuid(-1, 0, -1)".into())
            .and_then(|()| idmap::write(child, ids)),
        false => Ok(()),
    };
    if let Err(err) = sys::check(setresuid(uid, uid, uid), || format!("setresuid({uid})")) {
        // Never go on with a way back to root.
        let _ = writeln!(std::io::stderr(), "wsandbox: cannot give up root: {err}");
        sys::exit_now(SETUP_FAILED);
    }
    written
}

impl Supervisor {
    /// In the parent, after the clone: root writes the child's id maps from
    /// outside, then is gone for good (the child waits for `go` until then).
    pub(super) fn new(
        child: Pid,
        prepared: Prepared,
        isolation: &Isolation,
        timeout: Option<std::time::Duration>,
        stop_grace: std::time::Duration,
    ) -> Result<Supervisor, WallError> {
        let Prepared {
            ids,
            host_root,
            report: (report_read, report_write),
            go: (go_read, go_write),
            signals,
            broker,
            ..
        } = prepared;
        drop((report_write, go_read));
        let broker = broker.map(|ends| {
            drop(ends.inside);
            (ends.outside, Box::new(ends.rules))
        });
        if host_root {
            let own_users = isolation.applied.contains(&Layer::User);
            if let Err(err) = write_child_maps(child, &ids, own_users) {
                let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Err(err.into());
            }
        }
        Ok(Supervisor {
            child,
            go: go_write,
            messages: Receiver::new(report_read),
            signals,
            lifetime: Lifetime { timeout, stop_grace },
            broker,
        })
    }

    /// The sandboxed process's pid (in the caller's pid namespace).
    pub fn child(&self) -> i32 {
        self.child.as_raw()
    }

    /// Lets the sandbox go and waits for its end: forwards
    /// SIGINT/SIGTERM/SIGHUP (and sends `SIGKILL` if the sandbox is still
    /// alive a grace period later), kills it at the timeout, and says how
    /// it ended, with what it applied, what it said and what it used.
    ///
    /// The timeout is the outer wall's: the guest runs uninstrumented, and
    /// whether it spins in wasm or blocks in a host call, `SIGKILL` ends
    /// it — this process's, or the kernel's at the CPU limit if this
    /// process was stopped: a sandbox killed by `SIGKILL` after the
    /// deadline timed out.
    pub fn wait(self) -> Ending {
        self.wait_telling(&mut |_| {})
    }

    /// [`Supervisor::wait`], giving `told` each thing the sandbox says
    /// ([`super::Sandbox::say`]) as it arrives, while the sandbox runs: what
    /// is said before the guest runs can be acted on at once (naming a
    /// cache entry the sandbox wrote, for one).
    pub fn wait_telling(self, told: &mut dyn FnMut(&serde_json::Value)) -> Ending {
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        let Supervisor {
            child,
            go,
            mut messages,
            signals,
            lifetime,
            broker,
        } = self;
        // The broker answers from its own threads, from before the sandbox
        // goes until its end of the channel closes.
        let broker = broker.and_then(|(channel, rules)| match Broker::start(channel, *rules) {
            Ok(broker) => Some(broker),
            Err(err) => {
                crate::say_log!(WARN, "wsandbox: cannot start the network broker: {err}");
                None
            }
        });
        // The signals stay blocked; they are read from a descriptor, so
        // that waiting can end at the deadline too.
        let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok();
        // `go` stays open while the sandbox lives: its end (this process's
        // death) is how the sandbox knows it lost its supervisor.
        let mut go = std::fs::File::from(go);
        // The time limit runs from the moment the sandbox is let go: this
        // process may be stopped at any point after, before it has read
        // a word from the sandbox too.
        let mut watch = Watch::new(child, &lifetime);
        let _ = go.write_all(b"g");
        let (setup_error, applied) = match messages.next() {
            Some(Message::Ready(applied)) => (None, Some(applied)),
            Some(Message::SetupFailed(error)) => (Some(error), None),
            _ => (None, None),
        };
        messages.never_wait();
        let mut said = Vec::new();
        let mut heard = |message: Message| {
            if let Message::Said(value) = message {
                told(&value);
                said.push(value);
            }
        };
        let end = watch.until_end(&signals, signal_fd.as_ref(), &mut messages, &mut heard);
        let end = match setup_error {
            Some(error) => End::SetupFailed(error),
            None => end,
        };
        messages.drain().into_iter().for_each(&mut heard);
        let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).ok();
        let ms = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e3 + t.tv_usec() as f64 / 1e3;
        drop(go);
        Ending {
            end,
            applied,
            said,
            cpu_ms: usage.map_or(0.0, |u| ms(u.user_time()) + ms(u.system_time())),
            peak_memory_bytes: usage.map_or(0, |u| u.max_rss() as u64 * 1024),
            network: broker.map(|b| b.network()).unwrap_or_default(),
        }
    }
}

/// The supervisor's watch over a running sandbox.
struct Watch {
    child: Pid,
    deadline: Option<std::time::Instant>,
    stop_grace: std::time::Duration,
    /// The signal forwarded, if one was.
    forwarded: Option<i32>,
    /// When a sandbox that was sent a signal is killed, if still alive.
    kill_at: Option<std::time::Instant>,
    grace_over: bool,
    timed_out: bool,
}

impl Watch {
    fn new(child: Pid, lifetime: &Lifetime) -> Watch {
        Watch {
            child,
            deadline: lifetime.timeout.map(|t| std::time::Instant::now() + t),
            stop_grace: lifetime.stop_grace,
            forwarded: None,
            kill_at: None,
            grace_over: false,
            timed_out: false,
        }
    }

    /// Waits until the sandbox ended, acting on the deadline, the grace
    /// period and the signals that arrive on the way.
    fn until_end(
        &mut self,
        signals: &SigSet,
        signal_fd: Option<&nix::sys::signalfd::SignalFd>,
        messages: &mut Receiver,
        heard: &mut dyn FnMut(Message),
    ) -> End {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::time::{Duration, Instant};
        loop {
            if let Some(end) = self.ended() {
                return end;
            }
            let now = Instant::now();
            let left = self.deadline.map(|d| d.saturating_duration_since(now));
            if left == Some(Duration::ZERO) && !self.timed_out {
                self.timed_out = true;
                let _ = nix::sys::signal::kill(self.child, Signal::SIGKILL);
                continue;
            }
            if !self.grace_over && self.kill_at.is_some_and(|at| now >= at) {
                self.grace_over = true;
                let _ = nix::sys::signal::kill(self.child, Signal::SIGKILL);
                continue;
            }
            let Some(signal_fd) = signal_fd else {
                // No signalfd (never on Linux ≥ 2.6.27): plain waiting.
                if let Ok(signal) = signals.wait() {
                    self.forward(signal);
                }
                continue;
            };
            // The next thing to do, if nothing happens before: the
            // deadline, or the end of the grace period.
            let next = [
                left.filter(|_| !self.timed_out),
                self.kill_at
                    .filter(|_| !self.grace_over)
                    .map(|at| at.saturating_duration_since(now)),
            ]
            .into_iter()
            .flatten()
            .min();
            let wait = match next {
                // Round up, so the moment is not polled for in a busy loop.
                Some(next) => {
                    PollTimeout::try_from(next + Duration::from_micros(999)).unwrap_or(PollTimeout::MAX)
                }
                None => PollTimeout::NONE,
            };
            let mut fds = vec![PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
            fds.extend(messages.fd().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
            let _ = poll(&mut fds, wait);
            let said = fds
                .get(1)
                .and_then(|fd| fd.revents())
                .is_some_and(|r| !r.is_empty());
            drop(fds);
            if said {
                messages.ready().into_iter().for_each(&mut *heard);
            }
            while let Ok(Some(info)) = signal_fd.read_signal() {
                if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                    self.forward(signal);
                }
            }
        }
    }

    /// How the sandbox ended, if it has.
    fn ended(&mut self) -> Option<End> {
        let past_deadline = self.deadline.is_some_and(|d| std::time::Instant::now() >= d);
        match waitpid(self.child, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) if self.timed_out => {
                Some(End::TimedOut)
            }
            // The kernel's CPU limit, while this process was stopped.
            Ok(WaitStatus::Signaled(_, Signal::SIGKILL, _)) if past_deadline => {
                self.timed_out = true;
                Some(End::TimedOut)
            }
            // Killed past the grace period: the signal it did not heed.
            Ok(WaitStatus::Signaled(_, Signal::SIGKILL, _)) if self.grace_over => {
                Some(End::Signaled(self.forwarded.unwrap_or(Signal::SIGKILL as i32)))
            }
            Ok(WaitStatus::Exited(_, code)) => Some(End::Exited {
                code,
                forwarded: self.forwarded,
            }),
            Ok(WaitStatus::Signaled(_, signal, _)) => Some(End::Signaled(signal as i32)),
            Ok(_) => None,
            Err(_) => Some(End::Lost),
        }
    }

    /// Forwards a termination signal to the sandbox and starts its grace
    /// period (SIGCHLD only wakes the wait).
    fn forward(&mut self, signal: Signal) {
        if signal == Signal::SIGCHLD {
            return;
        }
        let _ = nix::sys::signal::kill(self.child, signal);
        self.forwarded = Some(signal as i32);
        self.kill_at
            .get_or_insert(std::time::Instant::now() + self.stop_grace);
    }
}
