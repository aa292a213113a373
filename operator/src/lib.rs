//! The Kommerce operator: one controller module per custom resource, pure builders, staged
//! reconcile (see `docs/adr/0001-workspace-layout.md`).
//!
//! Empty on purpose: the operator issues fill it. There is no binary yet, so nothing can be
//! mistaken for a working operator.
