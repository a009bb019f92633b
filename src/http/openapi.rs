//! The OpenAPI 3.1 document of `/api/*` and `/admin/*`, generated from the
//! handlers' `#[utoipa::path]` attributes and the types they serialize, and
//! served at `GET /openapi.json`. Who may call what is written here once: every
//! operation that states no security of its own takes the admin bearer token
//! (`admin_auth::Admin`), and so can answer 401 and 403.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Header, ObjectBuilder, OpenApi as Document, Ref, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};

use super::admin_auth::PAGE_COOKIE;
use super::errors::ErrorBody;
use super::{admin, admin_page, deliveries, health, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ghsync",
        description = "Keeps GitHub user profiles in step with GitHub. The admin and users API; \
                       every call takes the admin token (GHSYNC_ADMIN_TOKEN) as a bearer token.",
    ),
    paths(
        admin_page::page, admin_page::login, admin_page::logout, admin_page::retry,
        health::admin_health,
        admin::start_reconcile, admin::runs, admin::run,
        deliveries::retry,
        users::track, users::track_batch, users::by_id, users::by_login, users::disconnect,
        users::sync_now, users::set_sync_enabled,
    ),
    components(schemas(ErrorBody)),
    modifiers(&AdminAuth),
    tags(
        (name = "users", description = "Tracked users: look up, register, refresh, opt out, disconnect"),
        (name = "admin", description = "Health, passes, the webhook inbox"),
        (name = "admin page", description = "The operator's HTML page and its forms"),
    )
)]
pub struct ApiDoc;

/// The security schemes, and the bearer requirement with its 401/403 on every
/// operation that does not say otherwise.
struct AdminAuth;

impl Modify for AdminAuth {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme("cookie", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(PAGE_COOKIE))));
        let error = || Content::new(Some(Ref::from_schema_name("ErrorBody")));
        for item in doc.paths.paths.values_mut() {
            for operation in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete].into_iter().flatten() {
                if operation.security.is_some() {
                    continue;
                }
                operation.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
                let unauthorized = ResponseBuilder::new()
                    .description("missing or wrong bearer token")
                    .header("WWW-Authenticate", Header::new(ObjectBuilder::new().schema_type(Type::String)))
                    .content("application/json", error())
                    .build();
                let forbidden = ResponseBuilder::new()
                    .description("GHSYNC_ADMIN_TOKEN is not set: the admin API is disabled")
                    .content("application/json", error())
                    .build();
                operation.responses.responses.insert("401".into(), unauthorized.into());
                operation.responses.responses.insert("403".into(), forbidden.into());
            }
        }
    }
}

/// `GET /openapi.json`, unauthenticated: the document, built once.
pub async fn document() -> HttpResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let body = JSON.get_or_init(|| ApiDoc::openapi().to_json().expect("the document serializes"));
    HttpResponse::Ok().content_type("application/json").body(body.as_str())
}
