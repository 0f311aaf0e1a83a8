//! Checks `rkube up` makes before it starts anything: the Docker engine answers, and the API
//! server's port is free (naming the process that holds it when /proc tells).

use std::fs;
use std::time::Duration;

use crate::kubelet::docker::DockerRuntime;

/// How long the Docker engine may take to answer its version request.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(
        "cannot reach the Docker engine ({reason}); every node runs its Pods there: start it \
         (`sudo systemctl start docker`), or set DOCKER_HOST to its socket, then run `rkube up` again"
    )]
    DockerUnreachable { reason: String },
    #[error("cannot listen on {address}:{port}: port {port} is already in use{}; stop it, or pick another port with --port", holder_text(.holder))]
    PortInUse {
        address: String,
        port: u16,
        holder: Option<Holder>,
    },
    #[error("cannot listen on {address}:{port}: {reason}")]
    Listen {
        address: String,
        port: u16,
        reason: String,
    },
}

/// A process that listens on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
}

fn holder_text(holder: &Option<Holder>) -> String {
    match holder {
        Some(h) => format!(" by {} (pid {})", h.command, h.pid),
        None => String::new(),
    }
}

/// Connects to the Docker engine as the kubelets will, and fails with the fix when it does not
/// answer.
pub async fn check_docker() -> Result<(), PreflightError> {
    match tokio::time::timeout(DOCKER_TIMEOUT, DockerRuntime::connect()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(PreflightError::DockerUnreachable {
            reason: e.to_string(),
        }),
        Err(_) => Err(PreflightError::DockerUnreachable {
            reason: format!("no answer within {}s", DOCKER_TIMEOUT.as_secs()),
        }),
    }
}

/// Fails when `address:port` cannot be listened on, naming the port's holder when found.
pub fn check_port(address: &str, port: u16) -> Result<(), PreflightError> {
    match std::net::TcpListener::bind((address, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(PreflightError::PortInUse {
            address: address.to_string(),
            port,
            holder: port_holder(port),
        }),
        Err(e) => Err(PreflightError::Listen {
            address: address.to_string(),
            port,
            reason: e.to_string(),
        }),
    }
}

/// The process listening on TCP `port`: the socket's inode from /proc/net/tcp{,6}, then the
/// process with a descriptor on that socket. None when /proc does not tell (another user's
/// process, another network namespace).
pub fn port_holder(port: u16) -> Option<Holder> {
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| fs::read_to_string(table).ok())
        .flat_map(|text| listening_inodes(&text, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let targets: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            fs::read_link(fd.path())
                .is_ok_and(|link| targets.iter().any(|t| link.as_os_str() == t.as_str()))
        });
        if holds {
            let command = fs::read_to_string(entry.path().join("comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|_| "?".into());
            return Some(Holder { pid, command });
        }
    }
    None
}

/// The inodes of the sockets listening on `port` in one /proc/net/tcp table.
fn listening_inodes(table: &str, port: u16) -> Vec<String> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            let inode = fields.get(9)?;
            let (_, hex_port) = local.rsplit_once(':')?;
            let listening = *state == LISTEN && u16::from_str_radix(hex_port, 16).ok()? == port;
            listening.then(|| inode.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_inodes_reads_the_proc_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0 20 4 30 10 -1\n\
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 8080), ["4242"]);
        assert_eq!(listening_inodes(table, 80), ["4444"]);
        assert!(listening_inodes(table, 6443).is_empty());
    }

    #[test]
    fn a_taken_port_is_refused_naming_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let err = check_port("127.0.0.1", port).expect_err("port is taken");
        let PreflightError::PortInUse { holder, .. } = &err else {
            panic!("unexpected error {err}");
        };
        assert_eq!(
            holder.as_ref().map(|h| h.pid),
            Some(std::process::id()),
            "{err}"
        );
        assert!(
            err.to_string().starts_with(&format!(
                "cannot listen on 127.0.0.1:{port}: port {port} is already in use by "
            )),
            "{err}"
        );
        drop(listener);
        check_port("127.0.0.1", port).expect("free again");
    }
}
