//! Build script: compiles the pause process (`pause/pause.rs`) into a static executable in
//! `$OUT_DIR/pause`, which the kubelet embeds and imports as its pause image.
//!
//! The pause binary runs alone in an otherwise empty image, so it must not need a dynamic
//! loader or shared libraries: it is linked with `crt-static` and the result is checked for an
//! ELF interpreter, failing the build if one is there.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    build_pause();
}

fn build_pause() {
    println!("cargo:rerun-if-changed=pause/pause.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let source = manifest_dir.join("pause").join("pause.rs");
    let output = out_dir.join("pause");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let target = env("TARGET");

    let status = Command::new(&rustc)
        .arg("--edition=2021")
        .arg("--crate-type=bin")
        .arg("--crate-name=pause")
        // The same source gives the same binary (and image fingerprint) from any checkout.
        .arg(format!("--remap-path-prefix={}=.", manifest_dir.display()))
        .arg("--target")
        .arg(&target)
        .args(["-C", "target-feature=+crt-static"])
        .args(["-C", "opt-level=s"])
        .args(["-C", "panic=abort"])
        .args(["-C", "strip=symbols"])
        .args(["-C", "lto=fat"])
        .args(["-C", "codegen-units=1"])
        .args(["-C", "debuginfo=0"])
        .arg("-o")
        .arg(&output)
        .arg(&source)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {rustc} to build the pause binary: {e}"));
    assert!(
        status.success(),
        "building the static pause binary failed ({status}); it needs the target's static C \
         library (libc6-dev on Debian)"
    );
    check_static(&output);
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

/// Fails the build unless `path` is an ELF executable without a `PT_INTERP` program header,
/// i.e. one the kernel can start with no dynamic loader in the image.
fn check_static(path: &Path) {
    let elf = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"));
    assert!(
        elf.len() > 64 && &elf[..4] == b"\x7fELF",
        "{path:?} is not an ELF file"
    );
    assert_eq!(elf[4], 2, "{path:?}: only 64-bit ELF is checked");
    let little = elf[5] == 1;
    let read = |at: usize, len: usize| -> u64 {
        let bytes = &elf[at..at + len];
        let mut value = 0u64;
        for i in 0..len {
            let byte = if little { bytes[len - 1 - i] } else { bytes[i] };
            value = (value << 8) | u64::from(byte);
        }
        value
    };
    let phoff = read(0x20, 8) as usize;
    let phentsize = read(0x36, 2) as usize;
    let phnum = read(0x3a, 2) as usize;
    const PT_INTERP: u64 = 3;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        assert!(at + 4 <= elf.len(), "{path:?}: truncated program headers");
        assert_ne!(
            read(at, 4),
            PT_INTERP,
            "{path:?} is dynamically linked; the pause image needs a static binary"
        );
    }
}
