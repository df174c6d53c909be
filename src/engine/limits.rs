//! The limits of one instance, and the ending they explain.
//!
//! - `--memory`: the most linear memory an instance may have, and a bound
//!   on table elements, enforced by wasmtime through a resource limiter
//!   that remembers a refusal, so that the trap that usually follows can
//!   name the limit.
//! - `--fuel`: the store's fuel, when the engine meters it; running out is
//!   its own outcome, and what was burnt is reported.
//!
//! (`--timeout` is not here: the outer wall enforces it, so compute-bound
//! guests run uninstrumented.)

use super::{Ended, Outcome};
use wasmtime::{AsContext, AsContextMut};

/// Table elements an instance may have when memory is limited.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The store's limiter.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    /// Bytes of linear memory per memory, if limited.
    memory: Option<u64>,
    /// A grow (or an initial size) past the limit was refused.
    refused: bool,
    /// The store's fuel, if metered.
    fuel: Option<u64>,
    /// Bytes of linear memory the store's memories were given, all told:
    /// its peak, since a memory never shrinks.
    grown: u64,
}

impl Limits {
    pub(crate) fn new(memory: Option<u64>, fuel: Option<u64>) -> Limits {
        Limits {
            memory,
            refused: false,
            fuel,
            grown: 0,
        }
    }

    /// The most linear memory the store had, all its memories together.
    pub(crate) fn peak_memory(&self) -> u64 {
        self.grown
    }

    /// Fills a new store's tank, when fuel is metered.
    pub(crate) fn fuel_up<T: 'static>(
        store: &mut impl AsContextMut<Data = T>,
        limits: impl Fn(&T) -> &Limits,
    ) {
        let mut store = store.as_context_mut();
        if let Some(fuel) = limits(store.data()).fuel {
            store
                .set_fuel(fuel)
                .expect("the engine meters fuel when a policy sets it");
        }
    }

    /// How the guest ended, given what its entry point returned (how it
    /// ended, or the error that stopped it), explained by the limits it ran
    /// into.
    pub(crate) fn sort<T: 'static>(
        store: &impl AsContext<Data = T>,
        limits: impl Fn(&T) -> &Limits,
        ended: wasmtime::Result<Outcome>,
    ) -> Ended {
        let store = store.as_context();
        let this = limits(store.data());
        let fuel_consumed = this
            .fuel
            .map(|fuel| fuel.saturating_sub(store.get_fuel().unwrap_or(0)));
        let outcome = match ended {
            Ok(outcome) => outcome,
            Err(err) => this.explain(super::outcome::classify(err)),
        };
        Ended {
            outcome,
            fuel_consumed,
        }
    }

    /// Adds to a trap's message what explains it: a refused grow.
    fn explain(&self, outcome: Outcome) -> Outcome {
        match (outcome, self.memory) {
            (Outcome::OutOfFuel, _) => Outcome::OutOfFuel,
            (Outcome::Trapped { message, backtrace }, Some(limit)) if self.refused => Outcome::Trapped {
                message: format!(
                    "{message} (the guest's memory reached its limit, {} {})",
                    crate::policy::Setting::Memory,
                    crate::policy::size_text(limit)
                ),
                backtrace,
            },
            (outcome, _) => outcome,
        }
    }
}

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.memory.is_none_or(|limit| desired as u64 <= limit);
        self.refused |= !allowed;
        if allowed {
            self.grown = self.grown.saturating_add(desired.saturating_sub(current) as u64);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.memory.is_none() || desired <= MAX_TABLE_ELEMENTS)
    }
}
