//! rkube's pause process: PID 1 of every pod sandbox, holding the pod's network and IPC
//! namespaces open while the pod's containers come and go.
//!
//! Built statically by the crate's build script and embedded in the kubelet, which imports it
//! as the `rkube/pause` image, so no registry is ever needed. Unlike upstream's pause.c it
//! installs no signal handlers: that needs `unsafe` (or a crate) in Rust, and a PID 1 without a
//! handler ignores SIGTERM. The kubelet therefore starts sandboxes with the engine's init
//! (`docker run --init`) as PID 1, which forwards SIGTERM/SIGINT to this process, whose default
//! action is then to exit at once.
#![forbid(unsafe_code)]

fn main() {
    if std::env::args().nth(1).as_deref() == Some("-v") {
        println!(
            "rkube pause {}",
            option_env!("CARGO_PKG_VERSION").unwrap_or("(unknown version)")
        );
        return;
    }
    // Sleep forever without spinning; a spurious wake-up just parks again.
    loop {
        std::thread::park();
    }
}
