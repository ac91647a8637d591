//! HTTP routes: GraphQL, schema, health, readiness, metrics.

pub mod graphql;
pub mod negotiate;
pub mod oauth;
pub mod persisted;
pub mod ratelimit;
pub mod reports;
pub mod ws;

use actix_web::{HttpResponse, http::header, web};

use crate::{db, graphql::AppSchema, state::AppState};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/graphql").route(web::post().to(graphql::post)).route(web::get().to(graphql::get)))
        .route("/schema.graphql", web::get().to(schema_sdl))
        .service(web::resource("/oauth/token").route(web::post().to(oauth::token)))
        .route("/.well-known/jwks.json", web::get().to(oauth::jwks))
        .route("/reports/funding/{funder_file}", web::get().to(reports::funding_csv))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn schema_sdl(schema: web::Data<AppSchema>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(schema.sdl())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let ready = tokio::time::timeout(std::time::Duration::from_secs(2), db::ping(&state.db)).await.unwrap_or(false);
    let body = serde_json::json!({ "status": if ready { "ready" } else { "unavailable" }, "database": ready });
    if ready { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render())
}
