//! Integration tests: real etcd, the real `rkube` binary, the real kubectl and client libraries.

mod answers;
mod api;
mod apply;
mod authz;
mod clients;
mod controllers;
mod docker_runtime;
mod harness;
mod hostile;
mod kubectl;
mod kubelet;
mod kubelet_worker;
mod layers;
mod limits;
mod openapi;
mod protobuf;
mod raw;
mod scale;
mod scheduler;
mod up;
