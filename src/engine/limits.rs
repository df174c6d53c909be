//! `--memory`: the most linear memory an instance may have, and a bound on
//! table elements, enforced by wasmtime through a resource limiter that
//! remembers a refusal, so that the trap that usually follows can name the
//! limit.

/// Table elements an instance may have when memory is limited.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// The store's limiter.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    /// Bytes of linear memory per memory, if limited.
    memory: Option<u64>,
    /// A grow (or an initial size) past the limit was refused.
    refused: bool,
}

impl Limits {
    pub(crate) fn new(memory: Option<u64>) -> Limits {
        Limits {
            memory,
            refused: false,
        }
    }

    /// Adds to a trap's message what explains it: a refused grow.
    pub(crate) fn explain(&self, outcome: super::Outcome) -> super::Outcome {
        match (outcome, self.memory) {
            (super::Outcome::Trapped { message, backtrace }, Some(limit)) if self.refused => {
                super::Outcome::Trapped {
                    message: format!(
                        "{message} (the guest's memory reached its limit, --memory {})",
                        human(limit)
                    ),
                    backtrace,
                }
            }
            (outcome, _) => outcome,
        }
    }
}

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.memory.is_none_or(|limit| desired as u64 <= limit);
        self.refused |= !allowed;
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

/// `bytes` as the command line would write it: `64 MiB`, `1 GiB`, `1536 KiB`.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} bytes")
}
