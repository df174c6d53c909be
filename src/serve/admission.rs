//! Admission: which requests get an instance.
//! [`Serving::max_concurrent`](crate::engine::Serving::max_concurrent)
//! slots, one per instance alive; up to
//! [`Bounds::max_queued`](super::Bounds::max_queued) more requests wait
//! for one; past them, none (the client gets 503 at once).

use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slots for instances, and the queue for them.
pub(super) struct Admission {
    slots: Arc<Semaphore>,
    /// The requests waiting for a slot (a gauge of the metrics).
    waiting: Gauge,
    max_queued: i64,
}

impl Admission {
    /// `slots` slots (at least one), and a queue of `max_queued` whose
    /// length `waiting` keeps.
    pub(super) fn new(slots: u32, max_queued: u32, waiting: Gauge) -> Admission {
        Admission {
            slots: Arc::new(Semaphore::new(slots.max(1) as usize)),
            waiting,
            max_queued: i64::from(max_queued),
        }
    }

    /// A slot for one more instance: at once, after waiting in the queue,
    /// or none when the queue is full. The slot is given back when the
    /// permit is dropped.
    pub(super) async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Some(permit);
        }
        // Counted out again however the wait ends: with a slot, or with the
        // client gone (hyper then drops this future).
        struct InQueue<'a>(&'a Gauge);
        impl Drop for InQueue<'_> {
            fn drop(&mut self) {
                self.0.dec();
            }
        }
        let waiting = self.waiting.inc();
        let _in_queue = InQueue(&self.waiting);
        if waiting >= self.max_queued {
            return None;
        }
        self.slots.clone().acquire_owned().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_slots_and_the_queue_a_request_is_refused_at_once() {
        let admission = Arc::new(Admission::new(1, 1, Gauge::default()));
        let slot = admission.admit().await.expect("a free slot");
        let queued = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await.is_some() }
        });
        while admission.waiting.get() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(admission.admit().await.is_none(), "the queue is full");
        drop(slot);
        assert!(queued.await.unwrap(), "the queued request gets the slot");
        assert_eq!(admission.waiting.get(), 0);
    }
}
