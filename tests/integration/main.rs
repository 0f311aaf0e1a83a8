//! Integration tests: real etcd, the real `rkube` binary, the real kubectl and client libraries.

mod api;
mod authz;
mod clients;
mod docker_runtime;
mod harness;
mod kubectl;
mod kubelet;
mod raw;
mod scheduler;
mod up;
