//! The `kommerce` command's library: the service topology, the local router that routes like
//! the Ingress, and the process supervisor behind `kommerce up`.

pub mod api_docs;
pub mod audit;
#[cfg(feature = "bench")]
pub mod bench;
pub mod dlq;
pub mod openapi;
pub mod router;
pub mod saga;
pub mod seed;
pub mod supervisor;
pub mod topology;
pub mod web;
