//! A test Kubernetes API server (no real kube-apiserver runs on these
//! machines). Built so far: the object store (`store`) with the semantics
//! the operator and kubectl rely on, and label selectors (`selector`).
//! The HTTP layer (discovery, CRUD, watch streams, server-side apply) comes
//! next; until then nothing serves it.

pub mod selector;
pub mod store;
