//! Schema pieces schemars cannot derive in the shape Kubernetes wants.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A free-form object (service configuration): any JSON object, kept as given.
pub(crate) fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Kafka topic configs: string values, bounded so the API server can cost the CEL rules on them.
pub(crate) fn topic_config(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "maxProperties": 64,
        "additionalProperties": { "type": "string", "maxLength": 1024 },
    })
}
