//! The OpenAPI 3.1 document, generated from the route annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Kepler", description = "Domain security scores: a 0–100 score and a letter grade in which every point is explained."),
    modifiers(&SecuritySchemes),
    components(schemas(kepler_core::ScoreRecord, kepler_core::Category, kepler_core::Check))
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON text.
pub fn openapi_json() -> Result<String, serde_json::Error> {
    let (_, api) = crate::routes::openapi_router().split_for_parts();
    api.to_pretty_json()
}
