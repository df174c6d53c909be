//! What the sandboxed child tells its supervising parent, over a pipe: one
//! JSON message per line. First, whether setup worked (and what it
//! applied); then what the code above the wall says (the launch: just
//! before the guest's first instruction, how its code was loaded; at the
//! end, how the guest ended).
//!
//! The parent treats every message as untrusted — after the guest starts,
//! the child's process may be an escaped guest's — so it reads a bounded
//! amount and never waits for the end message: the exit status, the
//! resource usage and the timing come from the kernel and the parent.
//! Only the first `Ready` is believed, and the launch believes only the
//! first account of the loading: wsandbox's own code sends them before the
//! guest runs, so a guest can only add messages after them.

use super::Layer;
use super::landlock::Enforcement;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

/// The most the parent reads from the child, in all.
const LIMIT: u64 = 256 * 1024;
/// The longest message text the child sends.
const MAX_TEXT: usize = 16 * 1024;

/// What the isolation of a run consists of, as the child applied it. It is
/// sent only once every step has succeeded — every capability dropped,
/// `no_new_privs`, the seccomp allow-list, the rlimits, the caller's
/// descriptors closed; a failing step ends the run with `SetupFailed`
/// instead — so it holds only what varies with the host and the policy.
/// The outside checks of `tests/all/wall.rs` (`/proc/<pid>/status`) are
/// what show each step really took effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// Namespaces in place.
    pub namespaces: Vec<Layer>,
    /// Namespaces the kernel refused (only with `allow_degraded`).
    pub missing: Vec<Layer>,
    /// The host uid and gid the sandbox runs as.
    pub host_ids: (u32, u32),
    /// How far Landlock is enforced.
    pub landlock: Enforcement,
    /// A session of its own (no controlling terminal).
    pub own_session: bool,
}

/// One message, child to parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Message {
    /// Setup is done; the engine starts.
    Ready(Applied),
    /// Setup failed: why (the failing call, its arguments and errno).
    SetupFailed(String),
    /// What the code above the wall says (how the guest's code was loaded,
    /// how the guest ended): the wall carries it, bounded, and does not
    /// read it.
    Said(serde_json::Value),
}

/// The child's end.
#[derive(Debug)]
pub(super) struct Sender(std::fs::File);

impl Sender {
    pub(super) fn new(fd: OwnedFd) -> Sender {
        Sender(fd.into())
    }

    /// Sends `message`; a parent that is gone is not the child's concern.
    pub(super) fn send(&mut self, message: &Message) {
        let mut message = message.clone();
        if let Message::SetupFailed(text) = &mut message {
            truncate(text);
        }
        let Ok(mut line) = serde_json::to_vec(&message) else {
            return;
        };
        line.push(b'\n');
        let _ = self.0.write_all(&line);
    }
}

/// Cuts `text` to at most [`MAX_TEXT`] bytes (on a character boundary).
pub fn truncate(text: &mut String) {
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
pub(super) struct Receiver {
    reader: BufReader<std::io::Take<std::fs::File>>,
    /// The start of a line not yet whole (read without waiting).
    partial: Vec<u8>,
    /// The pipe reached its end (or its limit, or failed).
    ended: bool,
}

impl Receiver {
    pub(super) fn new(fd: OwnedFd) -> Receiver {
        Receiver {
            reader: BufReader::new(std::fs::File::from(fd).take(LIMIT)),
            partial: Vec::new(),
            ended: false,
        }
    }

    /// Waits for the next message; `None` at the end of the pipe or on
    /// anything that is not a message.
    pub(super) fn next(&mut self) -> Option<Message> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(n) if n > 0 => serde_json::from_str(line.trim_end()).ok(),
            _ => None,
        }
    }

    /// From now on, reads never wait.
    pub(super) fn never_wait(&self) {
        let fd = self.reader.get_ref().get_ref().as_fd();
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
    }

    /// The pipe, to wait until it can be read (`None` once it ended).
    pub(super) fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        (!self.ended).then(|| self.reader.get_ref().get_ref().as_fd())
    }

    /// The whole messages in the pipe now, read without waiting (after
    /// [`Receiver::never_wait`]); what is not a message is skipped.
    pub(super) fn ready(&mut self) -> Vec<Message> {
        let mut messages = Vec::new();
        while !self.ended {
            match self.reader.read_until(b'\n', &mut self.partial) {
                Ok(0) => self.ended = true,
                Ok(_) if self.partial.ends_with(b"\n") => {
                    messages.extend(serde_json::from_slice(self.partial.trim_ascii_end()).ok());
                    self.partial.clear();
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => self.ended = true,
            }
        }
        messages
    }

    /// The messages already in the pipe, without waiting (the child is gone,
    /// but something it started might still hold the pipe open).
    pub(super) fn drain(mut self) -> Vec<Message> {
        self.never_wait();
        self.ready()
    }
}
