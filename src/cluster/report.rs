//! What `rkube up` and `rkube down` tell the user: the commands that work for this cluster
//! (pasteable into a shell from any directory), and errors as one line with their causes.

use std::path::{Path, PathBuf};

/// Where a cluster lives, as `rkube up` was told, so the printed commands name the same files.
#[derive(Debug, Clone)]
pub struct Locations {
    /// The `rkube` binary that started the cluster.
    pub program: PathBuf,
    /// The `--name` given, if any (the config's name is used otherwise).
    pub name: Option<String>,
    pub state_dir: PathBuf,
    pub certs_dir: PathBuf,
    pub kubeconfig: PathBuf,
}

/// Quotes `word` for a POSIX shell, leaving plain words as they are.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `path` made absolute against `cwd` (without touching the file system), so that a printed
/// command works from any directory.
fn absolute(cwd: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path.strip_prefix(".").unwrap_or(path))
    }
}

fn quoted(path: &Path) -> String {
    shell_quote(&path.display().to_string())
}

/// The `rkube down` command that stops this cluster, with every flag it needs.
pub fn down_command(cwd: &Path, at: &Locations) -> String {
    let mut words = vec![quoted(&absolute(cwd, &at.program)), "down".to_string()];
    if let Some(name) = &at.name {
        words.extend(["--name".to_string(), shell_quote(name)]);
    }
    for (flag, path) in [
        ("--state-dir", &at.state_dir),
        ("--certs-dir", &at.certs_dir),
        ("--kubeconfig", &at.kubeconfig),
    ] {
        words.extend([flag.to_string(), quoted(&absolute(cwd, path))]);
    }
    words.join(" ")
}

/// The lines `rkube up` ends with: how to use the cluster and how to stop it.
pub fn next_steps(cwd: &Path, at: &Locations, server: &str, etcd_url: &str) -> String {
    let down = down_command(cwd, at);
    format!(
        "rkube is up: API server {server} (etcd {etcd_url})\n\
         Use it with:\n  \
         export KUBECONFIG={kubeconfig}\n  \
         kubectl get nodes\n\
         Logs are in {logs}\n\
         Stop it with:\n  \
         {down}\n\
         and delete its data, certificates and kubeconfig with:\n  \
         {down} --purge\n",
        kubeconfig = quoted(&absolute(cwd, &at.kubeconfig)),
        logs = absolute(cwd, &at.state_dir.join("logs")).display(),
    )
}

/// An error and its causes on one line, `outer: cause: root`, each text once: a cause whose
/// text the message already holds (a layer that interpolates its source) is not repeated.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = e.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locations(name: Option<&str>, kubeconfig: &str) -> Locations {
        Locations {
            program: PathBuf::from("target/debug/rkube"),
            name: name.map(str::to_string),
            state_dir: PathBuf::from(".rkube"),
            certs_dir: PathBuf::from("certs"),
            kubeconfig: PathBuf::from(kubeconfig),
        }
    }

    #[test]
    fn an_absolute_kubeconfig_is_printed_as_it_is() {
        let text = next_steps(
            Path::new("/home/me/rkube"),
            &locations(None, "/tmp/x/kubeconfig"),
            "https://127.0.0.1:6443",
            "http://127.0.0.1:2379",
        );
        assert!(
            text.contains("  export KUBECONFIG=/tmp/x/kubeconfig\n"),
            "{text}"
        );
        assert!(!text.contains("$PWD"), "{text}");
    }

    #[test]
    fn a_relative_kubeconfig_is_made_absolute() {
        let text = next_steps(
            Path::new("/home/me/rkube"),
            &locations(None, "./kubeconfig"),
            "https://127.0.0.1:6443",
            "http://127.0.0.1:2379",
        );
        assert!(
            text.contains("  export KUBECONFIG=/home/me/rkube/kubeconfig\n"),
            "{text}"
        );
    }

    #[test]
    fn the_stop_command_names_this_cluster_and_its_files() {
        let text = next_steps(
            Path::new("/w"),
            &locations(Some("demo"), "k c"),
            "https://127.0.0.1:6443",
            "http://127.0.0.1:2379",
        );
        let down = "/w/target/debug/rkube down --name demo --state-dir /w/.rkube \
                    --certs-dir /w/certs --kubeconfig '/w/k c'";
        assert!(text.contains(&format!("  {down}\n")), "{text}");
        assert!(text.contains(&format!("  {down} --purge\n")), "{text}");
        assert!(!text.contains("scripts/down"), "{text}");
    }

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("/a/b-c_d.e"), "/a/b-c_d.e");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Interpolating {
        path: String,
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot start the cluster")]
    struct Outer(#[source] Interpolating);

    #[test]
    fn error_chain_prints_each_cause_once() {
        let error = Outer(Interpolating {
            path: "kind.yaml".into(),
            source: std::io::Error::other("featureGates is not supported"),
        });
        assert_eq!(
            error_chain(&error),
            "cannot start the cluster: kind.yaml: featureGates is not supported"
        );
    }
}
