//! rkube: a Kubernetes-compatible control plane — API server, scheduler and kubelet.
//!
//! # Bird's-eye view
//!
//! Stock `kubectl` and client libraries talk HTTPS to the API server, which keeps every object
//! in etcd. The scheduler and the kubelets are separate processes and clients of the API like
//! any other: they never touch etcd.
//!
//! # Code map
//!
//! - [`meta`]: API machinery with no I/O — `Status` errors, selectors, quantities, durations,
//!   name and label validation, image references, merge/JSON/strategic patches, managed
//!   fields and server-side apply.
//! - [`storage`]: the storage seam — the [`storage::Storage`] trait, etcd, the watch cache
//!   (which wraps any `Storage`; one etcd watch feeds every resource's cache, so consistent
//!   LISTs are served from memory), etcd compaction, and an in-memory `Storage` for tests.
//! - [`registry`]: the generic store (create, update, patch, delete, deletecollection,
//!   watch), the list of kinds and one strategy per kind on its own type (decoding,
//!   defaulting, validation, warnings, patch schema, Table), subresources (`pods/binding`,
//!   `pods/eviction`, `pods/ephemeralcontainers`), ConfigMaps and Secrets, the RBAC kinds
//!   with their rule matching and bootstrap policy, the system namespaces and the namespace
//!   finalizer.
//! - [`apiserver`]: the HTTP layer — TLS, limits and timeouts, authentication, authorization
//!   (the Node authorizer, then RBAC from an in-memory view fed by the watch cache, ClusterRole
//!   aggregation, escalation checks, the self-subject reviews),
//!   options, routing, content negotiation (JSON, YAML, protobuf), discovery (legacy and
//!   aggregated), OpenAPI v2/v3, Table output, watch streams, `/metrics` and health checks,
//!   the proxies to kubelets and Pods (streamed logs, the upgraded connections of exec, attach
//!   and port-forward), the built-in resource metrics API; it parses requests, calls the
//!   registry and encodes answers.
//! - [`scheduler`]: binds unassigned Pods to nodes with room for them (an API client only).
//! - [`kubelet`]: runs the Pods bound to one node through Docker (pod workers, probes, node
//!   status and Lease, the environment from ConfigMaps and Secrets, ephemeral containers); its
//!   own HTTPS server streams logs, serves `/pods` and `/stats/summary`, and speaks the
//!   streaming protocols of exec, attach and port-forward (WebSocket channels, SPDY/3.1); an
//!   API client only.
//! - [`controller`]: the controller manager (the ReplicaSet, Deployment and Job controllers, the
//!   garbage collector of dependents whose owners are gone, the Pod garbage collector, the node
//!   lifecycle controller with its taint-based eviction),
//!   leader-elected through a Lease (an API client only).
//! - [`client`]: what the scheduler, the kubelet and the controller manager share as API
//!   clients (Event recording, a watch's relists taken whole).
//! - [`tls`]: TLS set-up and x509 client authentication, shared by API server and kubelet.
//! - [`cluster`]: certificates, kubeconfig, and `rkube up`/`down` process supervision.
//! - [`bench`]: `rkube bench` — its own cluster measured against raw etcd and raw Docker in
//!   the same run, with its own HTTP/2 load generator (an API client, as the components are).
//!
//! # Architecture invariants
//!
//! - Dependencies point one way: `meta ← storage ← registry ← apiserver`. The scheduler,
//!   the controller manager and the kubelet reach the API over HTTPS only (the `kube`
//!   crate), never storage or registry. `layering.rs` tests this on every build of the tests.
//! - `metadata.resourceVersion` is never stored; it is always the etcd revision of the read.
//! - No request can panic the server: input errors are `ApiError`s, answered as `Status`.

pub mod apiserver;
pub mod bench;
pub mod client;
pub mod cluster;
pub mod controller;
pub mod kubelet;
#[cfg(test)]
mod layering;
pub mod meta;
pub mod registry;
pub mod scheduler;
pub mod storage;
pub mod tls;
