//! Custom resource types of the `kommerce.dev/v1alpha1` API group: `ShopService`, `SagaTopic`
//! and `StockPool`.
//!
//! Empty on purpose: the operator issue defines the types here (kube derive + schemars) and
//! generates the CRD YAML next to this crate. Nothing depends on this crate yet.
