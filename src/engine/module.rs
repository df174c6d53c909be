//! Reading a module from disk and telling what it is, before any engine
//! exists: a WASI p1 core module, a component, in binary or text form, or
//! an artifact of `wsandbox compile`.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// The two kinds of program wsandbox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    /// A core WebAssembly module (WASI preview 1).
    Core,
    /// A component (WASI preview 2).
    Component,
}

/// The WASI version a program is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Wasi {
    /// A core module: WASI 0.1 (preview 1).
    Preview1,
    /// A component of WASI 0.2 (preview 2): and any other component.
    Preview2,
    /// A component exporting `wasi:cli/run@0.3.x` (a command) or
    /// `wasi:http/handler@0.3.x` (a service): WASI 0.3 (preview 3), the
    /// component model's async.
    Preview3,
}

impl Wasi {
    /// As `wsandbox` names it: `0.1`, `0.2`, `0.3`.
    pub fn version(self) -> &'static str {
        match self {
            Wasi::Preview1 => "0.1",
            Wasi::Preview2 => "0.2",
            Wasi::Preview3 => "0.3",
        }
    }
}

/// A module read from disk, in binary form, with its kind detected.
#[derive(Debug, Clone)]
pub struct Module {
    /// The path it was read from.
    pub path: PathBuf,
    /// Its binary encoding (text modules are translated when loaded).
    pub bytes: Vec<u8>,
    /// Whether it is a core module or a component.
    pub kind: ModuleKind,
    /// It is an artifact of `wsandbox compile` (machine code), not wasm.
    pub precompiled: bool,
}

/// A module that cannot be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleError {
    /// The file does not exist.
    #[error("{}: no such file", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// The file exists but cannot be read (a directory, no permission).
    #[error("{}: cannot read: {reason}", path.display())]
    Unreadable {
        /// The path as given.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is not valid WebAssembly, or wasmtime refuses it.
    #[error("{}: invalid module: {reason}", path.display())]
    Invalid {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The module is valid but cannot be instantiated or has nothing to run.
    #[error("{}: cannot run: {reason}", path.display())]
    Unrunnable {
        /// The path as given.
        path: PathBuf,
        /// Why: an import no host provides, no entry point.
        reason: String,
    },
}

/// The magic number every binary module and component starts with.
const WASM_MAGIC: &[u8; 4] = b"\0asm";

impl Module {
    /// Reads `path` and detects its kind. Text (`.wat`) is translated to
    /// binary here, so its errors point at the text.
    pub fn load(path: &Path) -> Result<Module, ModuleError> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModuleError::NotFound { path: path.into() },
            std::io::ErrorKind::IsADirectory => ModuleError::Unreadable {
                path: path.into(),
                reason: "is a directory".into(),
            },
            _ => ModuleError::Unreadable {
                path: path.into(),
                reason: crate::policy::io_reason(&e),
            },
        })?;
        Module::from_bytes(path, bytes)
    }

    /// Detects the kind of `bytes` read from `path` (named in errors).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Module, ModuleError> {
        let invalid = |reason: String| ModuleError::Invalid {
            path: path.into(),
            reason,
        };
        if bytes.is_empty() {
            return Err(invalid("the file is empty".into()));
        }
        if let Some(precompiled) = wasmtime::Engine::detect_precompiled(&bytes) {
            return Ok(Module {
                path: path.into(),
                bytes,
                kind: match precompiled {
                    wasmtime::Precompiled::Module => ModuleKind::Core,
                    wasmtime::Precompiled::Component => ModuleKind::Component,
                },
                precompiled: true,
            });
        }
        let bytes = if bytes.starts_with(WASM_MAGIC) {
            bytes
        } else if looks_like_text(path, &bytes) {
            match wat::parse_bytes(&bytes) {
                Ok(Cow::Borrowed(_)) => bytes,
                Ok(Cow::Owned(binary)) => binary,
                Err(e) => return Err(invalid(wat_error_line(&e.to_string()))),
            }
        } else {
            return Err(invalid(
                "not WebAssembly: no \\0asm header, and not WebAssembly text".into(),
            ));
        };
        let kind = detect(&bytes).ok_or_else(|| {
            invalid("unsupported binary version (neither a core module nor a component)".into())
        })?;
        Ok(Module {
            path: path.into(),
            bytes,
            kind,
            precompiled: false,
        })
    }

    /// This module's path, kind and form, without its bytes.
    pub fn clone_without_bytes(&self) -> Module {
        Module {
            path: self.path.clone(),
            bytes: Vec::new(),
            kind: self.kind,
            precompiled: self.precompiled,
        }
    }

    /// The WASI version it is written for: a component exporting a WASI 0.3
    /// entry point is a 0.3 program, whatever else it exports (a 0.3 guest
    /// may also export `wasi:cli/run@0.2`). Read from its top-level export
    /// sections alone, without an engine; a precompiled artifact counts as
    /// what it was compiled as only through its engine settings.
    pub fn wasi(&self) -> Wasi {
        match self.kind {
            ModuleKind::Core => Wasi::Preview1,
            ModuleKind::Component if !self.precompiled && exports_any(&self.bytes, &[P3_RUN, P3_HANDLER]) => {
                Wasi::Preview3
            }
            ModuleKind::Component => Wasi::Preview2,
        }
    }

    /// Whether it is a component that uses the component model's async
    /// anywhere: an async function (exported or imported), a stream or a
    /// future — a WASI 0.3 program, or any component with async exports
    /// to call. It parses the component's type sections, whose nesting
    /// the file decides: it belongs where the compiler runs (inside the
    /// sandbox), not in the supervisor, for whom [`Module::wasi`] reads
    /// the exports' names alone.
    pub fn uses_async(&self) -> bool {
        self.kind == ModuleKind::Component && !self.precompiled && declares_async(&self.bytes)
    }

    /// The name the guest sees as `argv[0]`: the file name of the module.
    pub fn program_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

/// The export that makes a component a WASI 0.3 command.
const P3_RUN: &[u8] = b"wasi:cli/run@0.3.";
/// The export that makes a component a WASI 0.3 service.
const P3_HANDLER: &[u8] = b"wasi:http/handler@0.3.";

/// The id of a component's export section.
const COMPONENT_EXPORTS: u8 = 11;

/// The id of a component's type section.
const COMPONENT_TYPES: u8 = 7;

/// The top-level sections of the component `bytes`: each one's id,
/// contents and offset. Only their ids and sizes are read on the way,
/// nested modules and components skipped whole; a section cut short ends
/// the walk.
fn sections(bytes: &[u8]) -> impl Iterator<Item = (u8, &[u8], usize)> {
    let mut at = 8;
    std::iter::from_fn(move || {
        let id = *bytes.get(at)?;
        let (size, length) = leb128_u32(bytes.get(at + 1..)?)?;
        let start = at + 1 + length;
        let end = start
            .checked_add(size as usize)
            .filter(|&end| end <= bytes.len())?;
        at = end;
        Some((id, &bytes[start..end], start))
    })
}

/// Whether a top-level export section of the component `bytes` names one
/// of `names` (a prefix of an export's name).
fn exports_any(bytes: &[u8], names: &[&[u8]]) -> bool {
    sections(bytes).any(|(id, section, _)| {
        id == COMPONENT_EXPORTS
            && names
                .iter()
                .any(|name| section.windows(name.len()).any(|w| w == *name))
    })
}

/// Whether a type that the top-level type sections of the component
/// `bytes` declare — its imports' and exports' types among them — is an
/// async function, a stream or a future.
fn declares_async(bytes: &[u8]) -> bool {
    use wasmparser::{BinaryReader, ComponentTypeSectionReader};
    sections(bytes)
        .filter(|(id, ..)| *id == COMPONENT_TYPES)
        .any(|(_, section, offset)| {
            ComponentTypeSectionReader::new(BinaryReader::new(section, offset))
                .is_ok_and(|types| types.into_iter().any(|ty| ty.is_ok_and(|ty| is_async(&ty))))
        })
}

/// Whether `ty` is, or declares, an async function, a stream or a future.
fn is_async(ty: &wasmparser::ComponentType<'_>) -> bool {
    use wasmparser::{
        ComponentDefinedType as Defined, ComponentType, ComponentTypeDeclaration as InComponent,
        InstanceTypeDeclaration as InInstance,
    };
    match ty {
        ComponentType::Func(func) => func.async_,
        ComponentType::Defined(Defined::Stream(_) | Defined::Future(_)) => true,
        ComponentType::Component(decls) => decls
            .iter()
            .any(|decl| matches!(decl, InComponent::Type(ty) if is_async(ty))),
        ComponentType::Instance(decls) => decls
            .iter()
            .any(|decl| matches!(decl, InInstance::Type(ty) if is_async(ty))),
        _ => false,
    }
}

/// An unsigned LEB128 number at the start of `bytes`, and its length.
fn leb128_u32(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value = 0u32;
    for (i, &byte) in bytes.iter().take(5).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Reads the version and layer fields after the magic number.
fn detect(bytes: &[u8]) -> Option<ModuleKind> {
    match bytes.get(4..8)? {
        [1, 0, 0, 0] => Some(ModuleKind::Core),
        [_, _, 1, 0] => Some(ModuleKind::Component),
        _ => None,
    }
}

/// Whether to try parsing the file as WebAssembly text: a `.wat` name, or
/// UTF-8 whose first token opens an s-expression or a comment.
fn looks_like_text(path: &Path, bytes: &[u8]) -> bool {
    if path.extension().is_some_and(|e| e == "wat") {
        return true;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let start = text.trim_start();
    start.starts_with('(') || start.starts_with(";;")
}

/// A wat error, which quotes the source over several lines, as one line
/// with its location (`line:column`).
fn wat_error_line(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("unknown error").to_owned();
    // wat puts the location on the second line: ` --> file:line:col`.
    match lines.next() {
        Some(loc) if loc.starts_with("-->") => {
            let loc = loc[3..].trim();
            format!("{first} (at {})", loc.strip_prefix("<anon>:").unwrap_or(loc))
        }
        _ => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str, bytes: &[u8]) -> Result<Module, ModuleError> {
        Module::from_bytes(Path::new(name), bytes.to_vec())
    }

    /// A component is a 0.3 program by a top-level export of
    /// `wasi:cli/run@0.3.x` or `wasi:http/handler@0.3.x`; one in a nested
    /// component, or of 0.2, is not.
    /// Any component whose types hold an async function, a stream or a
    /// future uses the component model's async; others do not.
    #[test]
    fn a_component_uses_async_by_its_types() {
        let component = |text: &str| load("c.wat", text.as_bytes()).unwrap();
        assert!(component("(component (type (stream u8)))").uses_async());
        assert!(component("(component (type (future)))").uses_async());
        assert!(component(r#"(component (import "i" (instance (export "f" (func async)))))"#).uses_async());
        assert!(component("(component (type (component (type (func async)))))").uses_async());
        assert!(!component(r#"(component (import "i" (instance (export "f" (func)))))"#).uses_async());
        assert!(!component("(component (type (list u8)))").uses_async());
        assert!(!load("m.wat", b"(module)").unwrap().uses_async());
    }

    #[test]
    fn wasi_0_3_is_told_by_the_top_level_exports() {
        let component = |text: &str| load("c.wat", text.as_bytes()).unwrap();
        let p3 = component(r#"(component (instance $i) (export "wasi:cli/run@0.3.0" (instance $i)))"#);
        assert_eq!(p3.wasi(), Wasi::Preview3);
        let both = component(
            r#"(component (instance $i) (export "wasi:cli/run@0.2.0" (instance $i)) (export "wasi:cli/run@0.3.1" (instance $i)))"#,
        );
        assert_eq!(both.wasi(), Wasi::Preview3);
        let service =
            component(r#"(component (instance $i) (export "wasi:http/handler@0.3.0" (instance $i)))"#);
        assert_eq!(service.wasi(), Wasi::Preview3);
        let p2_service = component(
            r#"(component (instance $i) (export "wasi:http/incoming-handler@0.2.6" (instance $i)))"#,
        );
        assert_eq!(p2_service.wasi(), Wasi::Preview2);
        let p2 = component(r#"(component (instance $i) (export "wasi:cli/run@0.2.0" (instance $i)))"#);
        assert_eq!(p2.wasi(), Wasi::Preview2);
        let nested =
            component(r#"(component (component (instance $i) (export "wasi:cli/run@0.3.0" (instance $i))))"#);
        assert_eq!(nested.wasi(), Wasi::Preview2);
        assert_eq!(load("m.wat", b"(module)").unwrap().wasi(), Wasi::Preview1);
        // Garbage after the header is no 0.3 program, and no panic.
        let mut cut = p3.bytes.clone();
        cut.truncate(12);
        assert_eq!(
            Module::from_bytes(Path::new("c.wasm"), cut).unwrap().wasi(),
            Wasi::Preview2
        );
    }

    #[test]
    fn detects_core_and_component_binaries() {
        let core = load("a.wasm", b"\0asm\x01\0\0\0").unwrap();
        assert_eq!(core.kind, ModuleKind::Core);
        let component = load("a.wasm", b"\0asm\x0d\0\x01\0").unwrap();
        assert_eq!(component.kind, ModuleKind::Component);
    }

    #[test]
    fn translates_text() {
        let m = load("m.wat", b"(module)").unwrap();
        assert_eq!(m.kind, ModuleKind::Core);
        assert!(m.bytes.starts_with(WASM_MAGIC));
        let c = load("c.wasm", b";; a component\n(component)").unwrap();
        assert_eq!(c.kind, ModuleKind::Component);
    }

    #[test]
    fn refuses_what_is_not_wasm() {
        for (name, bytes) in [
            ("empty.wasm", &b""[..]),
            ("text.wasm", b"hello, world\n"),
            ("bad.wat", b"(module (func (result i32)))x"),
            ("future.wasm", b"\0asm\x02\0\x02\0"),
        ] {
            let err = load(name, bytes).unwrap_err();
            assert!(matches!(err, ModuleError::Invalid { .. }), "{name}: {err}");
            assert_eq!(err.to_string().lines().count(), 1, "{name}: {err}");
        }
    }
}
