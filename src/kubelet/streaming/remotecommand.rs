//! Exec and attach sessions: a process's streams joined to a client's, whatever the transport
//! (WebSocket channels here, SPDY streams in [`super::spdy`]), and how the session ended told
//! the way each protocol version expects (upstream `remotecommand` `v1`…`v5.channel.k8s.io`).
//!
//! The transport hands the session what the client sends ([`FromClient`]) and takes what the
//! process writes ([`ToClient`]) over bounded channels, so a slow client slows the process's
//! output down instead of growing memory, and standard input flows independently of output
//! (a process blocked writing its output never stops its input, and the other way round).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

use crate::kubelet::runtime::{ExecSpec, Output, Runtime};

/// Room for this many chunks between the transport and the process, each way.
pub const CHANNEL_DEPTH: usize = 16;

/// What a client sends during a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromClient {
    Stdin(Bytes),
    /// The client closed its standard input (v5's close signal, or a SPDY stream's FIN).
    StdinClosed,
    Resize {
        width: u16,
        height: u16,
    },
}

/// What goes to the client.
pub type ToClient = Output;

/// The protocol versions of `remotecommand`, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// `channel.k8s.io`: stdin, stdout, stderr, error text.
    V1,
    /// `v2.channel.k8s.io`: as v1, with stdin, stdout and stderr independent.
    V2,
    /// `v3.channel.k8s.io`: adds the resize channel.
    V3,
    /// `v4.channel.k8s.io`: the error channel carries a `Status` with the exit code.
    V4,
    /// `v5.channel.k8s.io`: adds the close signal (WebSocket only).
    V5,
}

impl Version {
    /// The protocols a WebSocket client may ask for, preferred first.
    pub const WEBSOCKET: [(&'static str, Version); 5] = [
        ("v5.channel.k8s.io", Version::V5),
        ("v4.channel.k8s.io", Version::V4),
        ("v3.channel.k8s.io", Version::V3),
        ("v2.channel.k8s.io", Version::V2),
        ("channel.k8s.io", Version::V1),
    ];

    /// The protocols over SPDY, preferred first (v5 is WebSocket only, as upstream).
    pub const SPDY: [(&'static str, Version); 4] = [
        ("v4.channel.k8s.io", Version::V4),
        ("v3.channel.k8s.io", Version::V3),
        ("v2.channel.k8s.io", Version::V2),
        ("channel.k8s.io", Version::V1),
    ];
}

/// What the session runs.
#[derive(Debug, Clone)]
pub enum Target {
    Exec {
        container: String,
        spec: ExecSpec,
    },
    Attach {
        container: String,
        stdin: bool,
        tty: bool,
        /// Replay what the process wrote before the session: for a `stdinOnce` container,
        /// whose one session (`kubectl run -it`) must not miss what it printed first.
        replay: bool,
    },
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The command ran and exited non-zero.
    ExitCode {
        command: Vec<String>,
        code: i64,
    },
    /// It could not run, or the engine failed during it.
    Failed(String),
    /// The client went away; nothing is reported.
    ClientGone,
}

impl Outcome {
    /// What the error channel carries at the end, if anything: a `Status` for v4 and later
    /// (upstream kubelet `writeStatus`), the error text for older versions.
    pub fn error_message(&self, version: Version) -> Option<Bytes> {
        let status: Value = match self {
            Outcome::ClientGone => return None,
            Outcome::Success if version < Version::V4 => return None,
            Outcome::Success => json!({"metadata": {}, "status": "Success"}),
            Outcome::ExitCode { command, code } => {
                let message = format!(
                    "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                    command.join(" ")
                );
                if version < Version::V4 {
                    return Some(Bytes::from(message));
                }
                json!({"metadata": {}, "status": "Failure", "message": message,
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
            }
            Outcome::Failed(why) => {
                let message = format!("Internal error occurred: {why}");
                if version < Version::V4 {
                    return Some(Bytes::from(message));
                }
                json!({"metadata": {}, "status": "Failure", "message": message,
                    "reason": "InternalError", "code": 500,
                    "details": {"causes": [{"message": why}]}})
            }
        };
        Some(Bytes::from(status.to_string()))
    }
}

/// Runs the session until the process's output ends (or the client goes away) and says how
/// it ended. `from_client` closing means the client is gone.
pub async fn run(
    runtime: Arc<dyn Runtime>,
    target: Target,
    mut from_client: mpsc::Receiver<FromClient>,
    to_client: mpsc::Sender<ToClient>,
) -> Outcome {
    let attached = match &target {
        Target::Exec { container, spec } => runtime.exec_attached(container, spec).await,
        Target::Attach {
            container,
            stdin,
            replay,
            ..
        } => runtime.attach(container, *stdin, *replay).await,
    };
    let mut attached = match attached {
        Ok(attached) => attached,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let terminal = attached.terminal.clone();
    let mut input = Some(attached.input);
    let pump_in = async {
        while let Some(message) = from_client.recv().await {
            match message {
                FromClient::Stdin(bytes) => {
                    if let Some(stdin) = input.as_mut() {
                        if stdin.write_all(&bytes).await.is_err() {
                            input = None;
                        }
                    }
                }
                FromClient::StdinClosed => {
                    if let Some(mut stdin) = input.take() {
                        let _ = stdin.shutdown().await;
                    }
                }
                FromClient::Resize { width, height } => {
                    // A resize the engine refuses (the process just ended) changes nothing.
                    let _ = runtime.resize(&terminal, width, height).await;
                }
            }
        }
    };
    // Docker reports a command it could not start in the output itself (then exit code 126 or
    // 127), where upstream's runtimes fail the exec: such a first chunk is held until the end.
    let mut held: Option<Output> = None;
    let pump_out = async {
        let mut first = true;
        while let Some(chunk) = attached.output.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => return Err(Outcome::Failed(e.to_string())),
            };
            if std::mem::take(&mut first) && is_start_failure(&chunk) {
                held = Some(chunk);
                continue;
            }
            for chunk in held.take().into_iter().chain([chunk]) {
                if to_client.send(chunk).await.is_err() {
                    return Err(Outcome::ClientGone);
                }
            }
        }
        Ok(())
    };
    tokio::select! {
        // The client closing its side ends the session: what runs loses its streams.
        () = pump_in => return Outcome::ClientGone,
        ended = pump_out => if let Err(outcome) = ended {
            return outcome;
        },
    }
    let outcome = match target {
        Target::Attach { .. } => Outcome::Success,
        Target::Exec { spec, .. } => {
            let crate::kubelet::runtime::Terminal::Exec(exec_id) = &terminal else {
                return Outcome::Success;
            };
            let outcome = exit_outcome(runtime.as_ref(), exec_id, spec.cmd).await;
            match (&outcome, &held) {
                (
                    Outcome::ExitCode {
                        code: 126 | 127, ..
                    },
                    Some(Output::Stdout(text) | Output::Stderr(text)),
                ) => {
                    let text = String::from_utf8_lossy(text);
                    return Outcome::Failed(format!(
                        "Internal error occurred: error executing command in container: failed to exec in container: failed to start exec {exec_id:?}: {}",
                        text.trim_end()
                    ));
                }
                _ => outcome,
            }
        }
    };
    if let Some(chunk) = held {
        if to_client.send(chunk).await.is_err() {
            return Outcome::ClientGone;
        }
    }
    outcome
}

fn is_start_failure(chunk: &Output) -> bool {
    let (Output::Stdout(bytes) | Output::Stderr(bytes)) = chunk;
    bytes.starts_with(b"OCI runtime exec failed")
}

/// The output of an exec ends when the process closes its streams; the engine records the
/// exit code a moment later.
async fn exit_outcome(runtime: &dyn Runtime, exec_id: &str, command: Vec<String>) -> Outcome {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match runtime.exec_exit_code(exec_id).await {
            Ok(Some(0)) => return Outcome::Success,
            Ok(Some(code)) => return Outcome::ExitCode { command, code },
            Ok(None) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(None) => {
                return Outcome::Failed(format!(
                    "exec {exec_id}: the command closed its output but did not exit"
                ))
            }
            Err(e) => return Outcome::Failed(e.to_string()),
        }
    }
}

/// A resize message (`{"Width":80,"Height":24}`, upstream's `TerminalSize`).
pub fn parse_resize(bytes: &[u8]) -> Option<FromClient> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Size {
        width: u16,
        height: u16,
    }
    let size: Size = serde_json::from_slice(bytes).ok()?;
    Some(FromClient::Resize {
        width: size.width,
        height: size.height,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_error_channel_speaks_each_version() {
        let exit = Outcome::ExitCode {
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
            code: 3,
        };
        let v4: Value = serde_json::from_slice(&exit.error_message(Version::V4).unwrap()).unwrap();
        assert_eq!(v4["reason"], "NonZeroExitCode");
        assert_eq!(v4["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v4["details"]["causes"][0]["message"], "3");
        assert_eq!(
            v4["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
        let v3 = exit.error_message(Version::V3).unwrap();
        assert!(std::str::from_utf8(&v3).unwrap().ends_with("exit code 3"));
        let ok: Value =
            serde_json::from_slice(&Outcome::Success.error_message(Version::V5).unwrap()).unwrap();
        assert_eq!(ok, json!({"metadata": {}, "status": "Success"}));
        assert_eq!(Outcome::Success.error_message(Version::V2), None);
        assert_eq!(Outcome::ClientGone.error_message(Version::V5), None);
        let failed: Value = serde_json::from_slice(
            &Outcome::Failed("no such file".into())
                .error_message(Version::V4)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(failed["reason"], "InternalError");
        assert_eq!(failed["message"], "Internal error occurred: no such file");
    }

    #[test]
    fn resize_messages_parse_or_are_ignored() {
        assert_eq!(
            parse_resize(br#"{"Width":120,"Height":40}"#),
            Some(FromClient::Resize {
                width: 120,
                height: 40
            })
        );
        for bad in [&b""[..], b"{", br#"{"Width":-1,"Height":4}"#, b"null"] {
            assert_eq!(parse_resize(bad), None, "{bad:?}");
        }
    }
}
