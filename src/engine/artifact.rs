//! Machine code that was not compiled in this process: the one place the
//! engine maps bytes as code, and the types that say who vouched for them.
//!
//! wasmtime's `deserialize` trusts its input completely: bytes of its
//! format run as native code. So the engine maps only an [`Artifact`] (a
//! cache entry, authenticated before it became one) or a precompiled
//! module its caller trusted with a [`Precompiled`]; both are made only by
//! an `unsafe fn`, or inside this crate where the trust was checked.

use super::module::ModuleKind;

/// wasmtime's serialized machine code that its holder vouches for.
pub struct Artifact {
    bytes: Vec<u8>,
    start: usize,
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Artifact({} bytes)", self.code().len())
    }
}

impl Artifact {
    /// Takes `bytes` as machine code to map.
    ///
    /// # Safety
    ///
    /// `bytes` must be what wasmtime's `serialize` wrote, unchanged, from a
    /// source trusted to run native code in this process: wasmtime checks
    /// its version, settings and CPU features, but not the code itself.
    pub unsafe fn trusted(bytes: Vec<u8>) -> Artifact {
        Artifact { bytes, start: 0 }
    }

    /// An entry of wsandbox's compilation cache, whose keyed MAC the cache
    /// verified (`cache::Entry`: only the cache makes one), with its
    /// artifact from `start` on.
    pub(crate) fn authenticated(bytes: Vec<u8>, start: usize) -> Artifact {
        Artifact {
            start: start.min(bytes.len()),
            bytes,
        }
    }

    fn code(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// The caller's word that a precompiled module (an artifact of `wsandbox
/// compile`) may run: without one the engine refuses such a module.
#[derive(Debug, Clone, Copy)]
pub struct Precompiled(());

impl Precompiled {
    /// Allows precompiled modules.
    ///
    /// # Safety
    ///
    /// Every precompiled module the engine is given with this must be
    /// wasmtime's own output, trusted to run as native code: see
    /// [`Artifact::trusted`].
    pub unsafe fn trusted() -> Precompiled {
        Precompiled(())
    }

    /// For a policy with `allow_precompiled`: the user of the launch said
    /// to trust them, as `--allow-precompiled` says it on the command line.
    pub(crate) fn allowed_by_policy() -> Precompiled {
        Precompiled(())
    }
}

/// Maps `bytes` (an artifact, or a precompiled module's bytes with the
/// caller's [`Precompiled`]) as code of `kind`.
pub(super) fn deserialize(
    engine: &wasmtime::Engine,
    kind: ModuleKind,
    bytes: Vouched<'_>,
) -> wasmtime::Result<super::Code> {
    let bytes = match bytes {
        Vouched::Artifact(artifact) => artifact.code(),
        Vouched::Precompiled(bytes, Precompiled(())) => bytes,
    };
    match kind {
        // SAFETY: the bytes are an `Artifact` or a precompiled module with
        // a `Precompiled`, both made only by an `unsafe fn` whose caller
        // vouched for them, or in this crate for an authenticated cache
        // entry or a policy's `allow_precompiled`; wasmtime checks the
        // version, settings and CPU features before it maps the code.
        ModuleKind::Core => unsafe { wasmtime::Module::deserialize(engine, bytes) }.map(super::Code::Core),
        // SAFETY: as above.
        ModuleKind::Component => {
            unsafe { wasmtime::component::Component::deserialize(engine, bytes) }.map(super::Code::Component)
        }
    }
}

/// Bytes someone vouched for.
pub(super) enum Vouched<'a> {
    /// An artifact.
    Artifact(&'a Artifact),
    /// A precompiled module's bytes, with the caller's word.
    Precompiled(&'a [u8], Precompiled),
}
