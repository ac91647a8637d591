//! `GET /reports/funding/{funderId}.csv?from=..&to=..&granularity=..`: the funding report as
//! CSV (same authorisation, cache and k-anonymity as the GraphQL `fundingReport`).
//!
//! One row per service × period × breakdown (`ALL`, then one per channel and per patron
//! type), then each service's totals (`period_start`/`period_end` = the whole range,
//! `scope` = `SERVICE_TOTAL`) and the overall totals (`scope` = `TOTAL`). Suppressed cells are
//! empty and the row's `suppressed` column is `true`. `nps_respondents` and `nps_score` are
//! filled on the `TOTAL` row only (see `domain::reports::Nps`). Errors are JSON
//! `{"errors":[{"message","extensions":{"code"}}]}` with the usual status.

use std::fmt::Write as _;

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{
    domain::reports::{self as domain, Cell, Granularity, Metrics, Nps, ReportQuery},
    error::AppError,
    graphql::ids::{NodeKind, parse_global_id},
    state::AppState,
};

#[derive(Deserialize)]
pub struct CsvParams {
    from: Option<String>,
    to: Option<String>,
    granularity: Option<String>,
}

fn error_response(err: &AppError) -> HttpResponse {
    let code = err.code();
    let message = match err {
        AppError::Internal(_) => "internal error".to_owned(),
        other => other.to_string(),
    };
    let status = StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .json(json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] }))
}

fn date_param(value: Option<&str>, name: &str) -> Result<NaiveDate, AppError> {
    let raw = value.ok_or_else(|| AppError::bad_field(name, "required (YYYY-MM-DD)"))?;
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| AppError::bad_field(name, "expected a date YYYY-MM-DD"))
}

pub async fn funding_csv(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    params: web::Query<CsvParams>,
) -> HttpResponse {
    match build(&req, &state, &path, &params).await {
        Ok(body) => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(body),
        Err(err) => error_response(&err),
    }
}

async fn build(req: &HttpRequest, state: &AppState, path: &str, params: &CsvParams) -> Result<String, AppError> {
    let viewer = crate::http::graphql::viewer_from_request(req, state).await?;
    viewer.require_authenticated()?;
    let raw_id = path.strip_suffix(".csv").unwrap_or(path);
    let funder_id = match Uuid::parse_str(raw_id) {
        Ok(id) => id,
        Err(_) => parse_global_id(&async_graphql::ID(raw_id.to_owned()), NodeKind::Funder, "funderId")?,
    };
    let from = date_param(params.from.as_deref(), "from")?;
    let to = date_param(params.to.as_deref(), "to")?;
    let granularity = match params.granularity.as_deref() {
        None => Granularity::Month,
        Some(g) => Granularity::parse(g)
            .ok_or_else(|| AppError::bad_field("granularity", "one of DAY, WEEK, MONTH, QUARTER"))?,
    };
    let report = domain::report_for(state, &viewer, ReportQuery { funder_id, from, to, granularity }).await?;
    let mut out = String::from(
        "service_id,service_name,scope,period_start,period_end,breakdown,key,interactions,unique_patrons,\
         new_patrons,returning_patrons,average_satisfaction,rating_count,funding_attributed,cost_per_interaction,\
         currency,suppressed,nps_respondents,nps_score\n",
    );
    for svc in &report.services {
        let id = svc.service_id.to_string();
        for p in &svc.periods {
            rows(&mut out, &id, &svc.service_name, "PERIOD", p.start, p.end, &p.metrics, None);
        }
        rows(&mut out, &id, &svc.service_name, "SERVICE_TOTAL", report.from, report.to, &svc.totals, None);
    }
    rows(&mut out, "", "", "TOTAL", report.from, report.to, &report.totals, Some(&report.nps));
    Ok(out)
}

fn field(text: &str) -> String {
    // Neutralise spreadsheet formulas, then quote when needed.
    let text = if text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

fn cell(c: &Cell) -> String {
    c.value.map(|v| v.to_string()).unwrap_or_default()
}

fn money(m: &Option<(i64, String)>) -> String {
    match m {
        Some((minor, _)) => {
            let sign = if *minor < 0 { "-" } else { "" };
            format!("{sign}{}.{:02}", minor.unsigned_abs() / 100, minor.unsigned_abs() % 100)
        }
        None => String::new(),
    }
}

/// The NPS columns are filled on the overall `TOTAL` row only (NPS is not per service).
fn rows(
    out: &mut String,
    id: &str,
    name: &str,
    scope: &str,
    start: NaiveDate,
    end: NaiveDate,
    m: &Metrics,
    nps: Option<&Nps>,
) {
    let currency = m.funding_attributed.as_ref().map(|(_, c)| c.clone()).unwrap_or_default();
    let avg = m.average_satisfaction.map(|a| format!("{a:.2}")).unwrap_or_default();
    let main_suppressed = [m.interactions, m.unique_patrons, m.new_patrons, m.returning_patrons, m.rating_count]
        .iter()
        .any(|c| c.suppressed)
        || m.satisfaction_suppressed
        || nps.is_some_and(|n| n.respondents.suppressed);
    let (nps_respondents, nps_score) = match nps {
        Some(n) => (cell(&n.respondents), n.score.map(|s| format!("{s:.1}")).unwrap_or_default()),
        None => (String::new(), String::new()),
    };
    let _ = writeln!(
        out,
        "{},{},{scope},{start},{end},ALL,,{},{},{},{},{avg},{},{},{},{currency},{main_suppressed},{nps_respondents},{nps_score}",
        field(id),
        field(name),
        cell(&m.interactions),
        cell(&m.unique_patrons),
        cell(&m.new_patrons),
        cell(&m.returning_patrons),
        cell(&m.rating_count),
        money(&m.funding_attributed),
        money(&m.cost_per_interaction),
    );
    for (kind, list) in [("CHANNEL", &m.by_channel), ("PATRON_TYPE", &m.by_patron_type)] {
        for b in list {
            let suppressed = b.interactions.suppressed || b.unique_patrons.suppressed;
            let _ = writeln!(
                out,
                "{},{},{scope},{start},{end},{kind},{},{},{},,,,,,,,{suppressed},,",
                field(id),
                field(name),
                field(&b.key),
                cell(&b.interactions),
                cell(&b.unique_patrons),
            );
        }
    }
}
