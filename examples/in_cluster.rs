//! A client that runs inside a Pod, as controllers and CI agents do: it finds the API server,
//! its token, the cluster CA and its namespace where every Pod finds them
//! (`kube::Client::try_default`), lists the Pods of its namespace and prints one line:
//! `listed <n> pods` or `error <code>: <message>`. The tests run it in a container.

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match Client::try_default().await {
        Ok(client) => client,
        Err(e) => {
            println!("error config: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let pods: Api<Pod> = Api::default_namespaced(client);
    match pods.list(&ListParams::default()).await {
        Ok(list) => {
            println!("listed {} pods", list.items.len());
            std::process::ExitCode::SUCCESS
        }
        Err(kube::Error::Api(status)) => {
            println!("error {}: {}", status.code, status.message);
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            println!("error client: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
