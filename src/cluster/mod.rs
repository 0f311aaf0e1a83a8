//! Bringing clusters up and down: certificates, kubeconfigs, and the processes of a cluster.

pub mod config;
pub mod kubeconfig;
pub mod pki;
pub mod preflight;
pub mod report;
pub mod up;
