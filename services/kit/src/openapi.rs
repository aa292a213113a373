//! The API contract, derived from the code (ADR 0013): every handler carries a `#[utoipa::path]`
//! annotation next to its signature, every body type derives `ToSchema`, and each service's
//! router is an [`OpenApiRouter`] built with [`routes!`] — a route cannot be served without
//! being documented, because the annotation *is* what registers it.
//!
//! [`document`] finishes a service's document the same way for all six: title and version,
//! the problem+json schema, the security schemes, the service's tag, and the error responses
//! the kit itself produces (problem+json for 400, 401, 404, 413, 415, 422, 500, 503) on every
//! operation that can meet them. [`public`] merges the public (`/api/`) part of all six into
//! the one document the router serves at `/api/openapi.json`.

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, InfoBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder, Tag};

use crate::http::{FieldError, PROBLEM_JSON, Problem};

pub use utoipa::{IntoParams, ToSchema};
pub use utoipa_axum::router::OpenApiRouter;
pub use utoipa_axum::routes;

/// The security scheme of a shopper's or an admin's access token (`Authorization: Bearer`).
pub const BEARER: &str = "bearer";

/// The security scheme of a service credential; its scopes name the services allowed to call.
pub const SERVICE: &str = crate::credential::SCHEME;

/// The path every service serves its own document at.
pub const DOCUMENT_PATH: &str = "/openapi.json";

/// The version every document states: the platform's.
const VERSION: &str = env!("CARGO_PKG_VERSION");

impl utoipa::PartialSchema for FieldError {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .description(Some(
                "One field's problem: `field` is the JSON path (`lines[2].qty`), the query \
                 parameter or the header it names.",
            ))
            .property("field", ObjectBuilder::new().schema_type(Type::String))
            .property("message", ObjectBuilder::new().schema_type(Type::String))
            .required("field")
            .required("message")
            .into()
    }
}

impl ToSchema for FieldError {}

impl utoipa::PartialSchema for Problem {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
        ObjectBuilder::new()
            .description(Some(
                "RFC 9457 problem details: the body of every error response. `errors` names \
                 the fields of a 422.",
            ))
            .property(
                "type",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(utoipa::openapi::SchemaFormat::Custom("uri".into()))),
            )
            .property("title", ObjectBuilder::new().schema_type(Type::String))
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(400))
                    .maximum(Some(599)),
            )
            .property("detail", ObjectBuilder::new().schema_type(Type::String))
            .property(
                "errors",
                ArrayBuilder::new().items(Ref::from_schema_name("FieldError")),
            )
            .required("type")
            .required("title")
            .required("status")
            .into()
    }
}

impl ToSchema for Problem {
    fn schemas(schemas: &mut Vec<(String, RefOr<utoipa::openapi::schema::Schema>)>) {
        schemas.push((
            "FieldError".into(),
            <FieldError as utoipa::PartialSchema>::schema(),
        ));
    }
}

/// `?limit=&cursor=` of a listing paged by id, newest first.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// How many to return (default 20).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(format = Uuid, nullable = false)]
    pub cursor: Option<String>,
}

/// A required `Idempotency-Key` header: a repeat with the same key and body answers as the
/// first request did; the same key with another body is a 422.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct RequiredIdempotencyHeader {
    /// 1 to 255 visible ASCII characters.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = r"^[!-~]+$"
    )]
    pub key: String,
}

/// An optional `Idempotency-Key` header: with one, a repeat changes nothing again.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// 1 to 255 visible ASCII characters.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = r"^[!-~]+$",
        nullable = false
    )]
    pub key: Option<String>,
}

/// States `minProperties: 1` on the named (patch body) schemas: an empty patch is a 422. Set
/// on the document because utoipa-gen 5.5's `#[schema(min_properties = ..)]` emits
/// `maxProperties` instead.
pub fn at_least_one_property<S: Clone + Send + Sync + 'static>(
    api: &mut OpenApiRouter<S>,
    schemas: &[&str],
) {
    let Some(components) = api.get_openapi_mut().components.as_mut() else {
        return;
    };
    for name in schemas {
        if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(object))) =
            components.schemas.get_mut(*name)
        {
            object.min_properties = Some(1);
        }
    }
}

/// A problem+json response with `description`.
pub fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            Content::new(Some(Ref::from_schema_name("Problem"))),
        )
        .build()
}

/// The kit's error responses an operation can meet, by what it has: `(status, description)`.
fn kit_errors(op: &Operation, path: &str) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        ("400", "The request cannot be read (query string, header)."),
        ("422", "A field is not acceptable; `errors` names it."),
        ("500", "An internal error; nothing is said about its cause."),
        (
            "503",
            "A dependency is busy or down, or the request timed out; `Retry-After` says when to \
             retry.",
        ),
    ];
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    if secured {
        out.push(("401", "No, an invalid, an expired or a revoked credential."));
    }
    let json = serde_json::to_value(&op.security).unwrap_or_default();
    let service_only = json
        .as_array()
        .is_some_and(|reqs| reqs.iter().any(|r| r.get(SERVICE).is_some()));
    if service_only {
        out.push((
            "403",
            "The calling service is not one of this route's callers.",
        ));
    }
    if path.contains('{') {
        out.push((
            "404",
            "Nothing by that id (a resource the caller may not see is also a 404).",
        ));
    }
    if op.request_body.is_some() {
        out.push(("413", "The body is larger than the service accepts."));
        out.push(("415", "The body is not of the documented media type."));
    }
    out
}

/// The problem response of a kit error; a 503 says when to retry.
fn kit_error(status: &str, text: &str) -> Response {
    let mut response = problem(text);
    if status == "503" {
        let mut retry = utoipa::openapi::header::Header::new(
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::Integer)
                .minimum(Some(0)),
        );
        retry.description = Some("Seconds to wait before retrying (when known).".into());
        response.headers.insert("Retry-After".into(), retry);
    }
    response
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// A service's finished document: `paths` (what its [`OpenApiRouter`] collected) with the
/// platform's title, version, schemes, the service's tag on every operation and the kit's
/// error responses where the handler did not state them.
pub fn document(service: &str, description: &str, mut doc: OpenApi) -> OpenApi {
    doc.info = InfoBuilder::new()
        .title(format!("Kommerce {service} service"))
        .version(VERSION)
        .description(Some(description))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        "Problem".into(),
        <Problem as utoipa::PartialSchema>::schema(),
    );
    let mut nested = Vec::new();
    <Problem as ToSchema>::schemas(&mut nested);
    components.schemas.extend(nested);
    components.security_schemes.insert(
        BEARER.into(),
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An access token from `POST /api/v1/auth/login` (user service).",
                ))
                .build(),
        ),
    );
    components.security_schemes.insert(
        SERVICE.into(),
        SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
            utoipa::openapi::security::ApiKeyValue::with_description(
                crate::credential::HEADER,
                "A short-lived credential naming the calling service, signed with its key \
                 (internal routes only; the scopes name the services allowed to call).",
            ),
        )),
    );
    let mut tag = Tag::new(service);
    tag.description = Some(description.to_owned());
    doc.tags = Some(vec![tag]);
    for (path, item) in &mut doc.paths.paths {
        for op in operations(item) {
            op.tags = Some(vec![service.to_owned()]);
            for (status, text) in kit_errors(op, path) {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::T(kit_error(status, text)));
            }
        }
    }
    doc
}

/// The public document of the platform: the `/api/` paths of every service's document (their
/// internal ones left out), their schemas and schemes, one tag per service.
pub fn public(docs: &[OpenApi]) -> OpenApi {
    let mut out = OpenApi::new(
        InfoBuilder::new()
            .title("Kommerce")
            .version(VERSION)
            .description(Some(
                "The public API of every Kommerce service, as the router and the Ingress serve \
                 it under `/api/v1/`. Errors are RFC 9457 problem+json.",
            ))
            .build(),
        utoipa::openapi::Paths::new(),
    );
    let mut tags = Vec::new();
    for doc in docs {
        let mut doc = doc.clone();
        doc.paths.paths.retain(|path, _| path.starts_with("/api/"));
        tags.extend(doc.tags.take().unwrap_or_default());
        doc.info = out.info.clone();
        out.merge(doc);
    }
    out.tags = Some(tags);
    out
}

/// A service's router from its [`OpenApiRouter`]: its internal routes guarded by the callers
/// each states (`kommerce_kit::credential`, checked with `verifier`'s keys), and its finished
/// document served at [`DOCUMENT_PATH`].
pub fn serve<S>(
    api: OpenApiRouter<S>,
    service: &str,
    description: &str,
    verifier: std::sync::Arc<crate::auth::TokenVerifier>,
) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let (router, doc) = api.split_for_parts();
    let doc = document(service, description, doc);
    let policy = std::sync::Arc::new(crate::credential::Policy::from_document(&doc));
    let audience: std::sync::Arc<str> = service.into();
    let router = router.route_layer(axum::middleware::from_fn(move |req, next| {
        crate::credential::guard(
            policy.clone(),
            verifier.clone(),
            audience.clone(),
            req,
            next,
        )
    }));
    let body = to_json(&doc);
    router.route(
        DOCUMENT_PATH,
        axum::routing::get(move || {
            let body = body.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        }),
    )
}

/// The JSON of a document as written to `docs/openapi/` and served: pretty, with a final
/// newline, so the committed files diff well.
pub fn to_json(doc: &OpenApi) -> String {
    let mut json = doc.to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
    use utoipa::openapi::security::SecurityRequirement;
    use utoipa::openapi::{PathsBuilder, request_body::RequestBody};

    fn doc(paths: &[(&str, Operation)]) -> OpenApi {
        let mut builder = PathsBuilder::new();
        for (path, op) in paths {
            builder = builder.path(*path, PathItem::new(HttpMethod::Get, op.clone()));
        }
        OpenApi::new(InfoBuilder::new().title("t").version("0").build(), builder)
    }

    fn statuses(doc: &OpenApi, path: &str) -> Vec<String> {
        let item = &doc.paths.paths[path];
        let op = item.get.as_ref().expect("a GET");
        op.responses.responses.keys().cloned().collect()
    }

    #[test]
    fn errors_are_added_by_what_the_operation_has() {
        let plain = OperationBuilder::new().build();
        let mut secured_with_body = OperationBuilder::new()
            .security(SecurityRequirement::new(BEARER, Vec::<String>::new()))
            .build();
        secured_with_body.request_body = Some(RequestBody::new());
        let out = document(
            "pay",
            "d",
            doc(&[("/a", plain), ("/b/{id}", secured_with_body)]),
        );
        assert_eq!(statuses(&out, "/a"), ["400", "422", "500", "503"]);
        assert_eq!(
            statuses(&out, "/b/{id}"),
            ["400", "401", "404", "413", "415", "422", "500", "503"]
        );
        let op = out.paths.paths["/a"].get.as_ref().expect("a GET");
        assert_eq!(op.tags.as_deref(), Some(&["pay".to_owned()][..]));
    }

    #[test]
    fn a_stated_response_is_kept() {
        let op = OperationBuilder::new()
            .response("422", ResponseBuilder::new().description("mine"))
            .build();
        let out = document("pay", "d", doc(&[("/a", op)]));
        let op = out.paths.paths["/a"].get.as_ref().expect("a GET");
        let RefOr::T(r) = &op.responses.responses["422"] else {
            panic!("an inline response")
        };
        assert_eq!(r.description, "mine");
    }

    #[test]
    fn the_public_document_leaves_internal_paths_out() {
        let op = OperationBuilder::new().build();
        let a = document(
            "a",
            "d",
            doc(&[("/api/v1/a", op.clone()), ("/internal/v1/a", op.clone())]),
        );
        let b = document("b", "d", doc(&[("/api/v1/b", op)]));
        let out = public(&[a, b]);
        let paths: Vec<&String> = out.paths.paths.keys().collect();
        assert_eq!(paths, ["/api/v1/a", "/api/v1/b"]);
        let tags: Vec<String> = out
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(tags, ["a", "b"]);
        assert!(
            out.components
                .is_some_and(|c| c.schemas.contains_key("Problem"))
        );
    }
}
