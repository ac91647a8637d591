//! Building and running the server: bind, migrate, seed on request, serve until stopped.

use std::{net::TcpListener, sync::Arc};

use actix_web::{
    App, HttpMessage, HttpServer,
    dev::{Server, Service},
    http::header::{HeaderName, HeaderValue},
    web,
};
use tracing_actix_web::TracingLogger;

use crate::{
    auth::JwtKeys, cache, config::Settings, db, graphql::build_schema, http, metrics::Metrics, seed, state::AppState,
};

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

impl Application {
    /// Connect and migrate the database, fill it with the demo library when asked, and bind the
    /// listener (port 0 picks a free port, as the tests do).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::new());
        let db = db::connect(&settings.database, Some(metrics.clone())).await?;
        db::migrate(&db).await?;
        if settings.demo {
            seed::seed_demo_if_empty(&db).await?;
        }
        let jwt = Arc::new(JwtKeys::from_settings(&settings.jwt)?);
        let listener =
            TcpListener::bind(&settings.bind).map_err(|e| anyhow::anyhow!("cannot bind {}: {e}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let shutdown_timeout = settings.shutdown_timeout.as_secs();
        let workers = settings.workers;
        let (cache, events) = cache::from_settings(&settings, metrics.clone())?;
        metrics.watch_pool(db.clone());
        let audit = crate::domain::audit::AuditLog::start(&db);
        if let Some(days) = settings.retention_days {
            crate::domain::privacy::spawn_retention_job(db.clone(), days);
        }
        let permits = settings
            .limits
            .max_concurrent_operations
            .unwrap_or_else(|| 2 * usize::try_from(settings.database.max_connections).unwrap_or(8))
            .max(1);
        let operations = Arc::new(tokio::sync::Semaphore::new(permits));
        let state = AppState { db, settings: Arc::new(settings), jwt, metrics, cache, events, audit, operations };
        let schema = build_schema(state.clone());
        let server_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                // Inside the logger, so the request id it assigned is there to echo.
                .wrap_fn(|req, srv| {
                    let id = req.extensions().get::<tracing_actix_web::RequestId>().map(|id| id.to_string());
                    let response = srv.call(req);
                    async move {
                        let mut response = response.await?;
                        if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                            response.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
                        }
                        Ok(response)
                    }
                })
                .wrap(TracingLogger::default())
                .app_data(web::Data::new(schema.clone()))
                .app_data(web::Data::new(server_state.clone()))
                .configure(http::routes)
        })
        .shutdown_timeout(shutdown_timeout)
        .listen(listener)?;
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        Ok(Self { port, server: server.run(), state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until SIGINT/SIGTERM; actix stops accepting and drains in-flight requests.
    /// Afterwards the audit events still queued are written before returning.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.state.audit.shutdown().await;
        result
    }
}
