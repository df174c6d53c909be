//! What the sandboxed child tells its supervising parent, over a pipe: one
//! JSON message per line. First, whether setup worked (and what it
//! applied); then, just before the guest's first instruction, how its code
//! was loaded; at the end, how the guest ended.
//!
//! The parent treats every message as untrusted — after the guest starts,
//! the child's process may be an escaped guest's — so it reads a bounded
//! amount and never waits for the end message: the exit status, the
//! resource usage and the timing come from the kernel and the parent.
//! Only the first `Ready` and the first `Loaded` are believed: wsandbox's
//! own code sends them before the guest runs, so a guest can only add
//! messages after them.

use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

/// The most the parent reads from the child, in all.
const LIMIT: u64 = 256 * 1024;
/// The longest message text the child sends.
const MAX_TEXT: usize = 16 * 1024;

/// What the isolation of a run consists of, as the child applied it. It is
/// sent only once every step has succeeded (a failing step ends the run
/// with `SetupFailed` instead), so the lockdown flags are always true in a
/// report: they name what was applied, for readers of the report; the
/// outside checks of `tests/all/wall.rs` (`/proc/<pid>/status`) are what
/// show each step really took effect. `landlock`, `own_session` and the
/// namespace lists do vary with the host and the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Namespaces in place (`user`, `pid`, `mount`, `uts`, `ipc`, `net`,
    /// `cgroup`).
    pub namespaces: Vec<String>,
    /// Namespaces the kernel refused (only with `--allow-degraded`).
    pub missing: Vec<String>,
    /// The host uid and gid the sandbox runs as.
    pub host_ids: (u32, u32),
    /// Every capability set emptied, the bounding set included.
    pub capabilities_dropped: bool,
    /// `PR_SET_NO_NEW_PRIVS`.
    pub no_new_privs: bool,
    /// The seccomp allow-list is installed.
    pub seccomp: bool,
    /// Landlock: `full`, `partial` (an older ABI) or `none` (degraded).
    pub landlock: String,
    /// rlimits: core 0, bounded open files and file size.
    pub rlimits: bool,
    /// Every descriptor but stdin, stdout and stderr closed.
    pub fds_closed: bool,
    /// A session of its own (no controlling terminal).
    pub own_session: bool,
}

/// One message, child to parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// Setup is done; the engine starts.
    Ready(Applied),
    /// Setup failed: why (the failing call, its arguments and errno).
    SetupFailed(String),
    /// The guest's code is loaded; it starts now.
    Loaded(Loaded),
    /// The guest ended: `exited`, `trapped`, `fuel` or `error`, and a
    /// message.
    Ended {
        /// How.
        outcome: String,
        /// What (a trap's message, an error's line).
        message: Option<String>,
        /// The fuel it burnt, when metered.
        #[serde(default)]
        fuel_consumed: Option<u64>,
    },
}

/// How the guest's code was loaded, said just before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loaded {
    /// `compiled`, `cache` or `precompiled`.
    pub code: String,
    /// Freshly compiled code was written to the unnamed file passed in for
    /// it (a cache entry, `compile`'s output), which is closed now: the
    /// supervisor may name it.
    pub written: bool,
}

/// The child's end.
#[derive(Debug)]
pub struct Sender(std::fs::File);

impl Sender {
    pub(super) fn new(fd: OwnedFd) -> Sender {
        Sender(fd.into())
    }

    /// Sends `message`; a parent that is gone is not the child's concern.
    pub fn send(&mut self, message: &Message) {
        let mut message = message.clone();
        if let Message::SetupFailed(text)
        | Message::Ended {
            message: Some(text), ..
        } = &mut message
        {
            truncate(text);
        }
        let mut line = serde_json::to_vec(&message).expect("messages serialize");
        line.push(b'\n');
        let _ = self.0.write_all(&line);
    }
}

fn truncate(text: &mut String) {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" [...]");
    }
}

/// The parent's end.
#[derive(Debug)]
pub struct Receiver(BufReader<std::io::Take<std::fs::File>>);

impl Receiver {
    pub(super) fn new(fd: OwnedFd) -> Receiver {
        Receiver(BufReader::new(std::fs::File::from(fd).take(LIMIT)))
    }

    /// Waits for the next message; `None` at the end of the pipe or on
    /// anything that is not a message.
    pub fn next(&mut self) -> Option<Message> {
        let mut line = String::new();
        match self.0.read_line(&mut line) {
            Ok(n) if n > 0 => serde_json::from_str(line.trim_end()).ok(),
            _ => None,
        }
    }

    /// The messages already in the pipe, without waiting (the child is gone,
    /// but something it started might still hold the pipe open).
    pub fn drain(mut self) -> Vec<Message> {
        let fd = self.0.get_ref().get_ref().as_fd();
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
        std::iter::from_fn(|| self.next()).collect()
    }
}
