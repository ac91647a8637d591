//! What each scenario asks, as its client would: the ids and tokens they need are read from the
//! server over GraphQL once, then every call is built from them.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use anyhow::{Context as _, bail};
use async_graphql::ID;
use chrono::{Datelike, Duration, Months, NaiveDate, Utc};
use rand::{Rng, rngs::StdRng, seq::IndexedRandom};
use rapport::graphql::ids::decode_global_id;
use serde_json::{Value, json};

use crate::server::{ServerProcess, Tokens};

/// A scenario of the issue; `d` runs at two page sizes so statements per request can be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Healthz,
    Catalogue,
    PatronApp,
    StaffSearch(u32),
    FunderReport,
    PartnerBatch,
    Mix,
}

impl Scenario {
    pub fn key(self) -> String {
        match self {
            Scenario::Healthz => "a".into(),
            Scenario::Catalogue => "b".into(),
            Scenario::PatronApp => "c".into(),
            Scenario::StaffSearch(page) => format!("d{page}"),
            Scenario::FunderReport => "e".into(),
            Scenario::PartnerBatch => "f".into(),
            Scenario::Mix => "g".into(),
        }
    }

    pub fn title(self) -> String {
        match self {
            Scenario::Healthz => "(a) /healthz".into(),
            Scenario::Catalogue => "(b) anonymous catalogue (cached)".into(),
            Scenario::PatronApp => "(c) patron app: profile, 20 latest, recommendations".into(),
            Scenario::StaffSearch(page) => format!("(d) staff search, page {page}, latest 3 each"),
            Scenario::FunderReport => "(e) funder one-year monthly report".into(),
            Scenario::PartnerBatch => format!("(f) partner recordInteractions ×{PARTNER_BATCH}"),
            Scenario::Mix => "(g) mix".into(),
        }
    }
}

/// Scenarios in the order they run.
pub struct Plan {
    pub scenarios: Vec<Scenario>,
}

impl Plan {
    pub fn parse(keys: &[String]) -> anyhow::Result<Self> {
        let mut scenarios = Vec::new();
        for key in keys {
            match key.trim() {
                "a" => scenarios.push(Scenario::Healthz),
                "b" => scenarios.push(Scenario::Catalogue),
                "c" => scenarios.push(Scenario::PatronApp),
                "d" => scenarios.extend([Scenario::StaffSearch(10), Scenario::StaffSearch(100)]),
                "f" => scenarios.push(Scenario::PartnerBatch),
                "e" => scenarios.push(Scenario::FunderReport),
                "g" => scenarios.push(Scenario::Mix),
                other => match other.strip_prefix('d').and_then(|n| n.parse().ok()) {
                    Some(page) => scenarios.push(Scenario::StaffSearch(page)),
                    None => bail!("unknown scenario `{other}` (a, b, c, d, d<page size>, e, f, g)"),
                },
            }
        }
        Ok(Self { scenarios })
    }
}

pub const PARTNER_BATCH: usize = 500;
/// The partner share of the mix sends smaller batches, as a live sync would.
const MIX_BATCH: usize = 50;

/// One HTTP call of a scenario.
pub struct Call {
    pub get: bool,
    pub path: &'static str,
    pub token: Option<Arc<str>>,
    pub body: Arc<Vec<u8>>,
    /// Interactions written by the call (for ingest rates).
    pub items: u64,
}

const CATALOGUE: &str = "{ services(first: 50) { totalCount nodes { id code name category channels audience } } }";

const SEARCH: &str = "query Search($first: Int!, $text: String) {
  patrons(first: $first, filter: { text: $text }) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id name cardNumber patronType homeBranch
      engagement { score lifecycleStage lastInteractionAt }
      interactions(first: 3) { nodes { id kind channel occurredAt service { name } } }
    }
  }
}";

const REPORT: &str = "query Report($funder: ID!, $from: Date!, $to: Date!) {
  fundingReport(funderId: $funder, from: $from, to: $to, granularity: MONTH) {
    k
    services {
      serviceName
      periods {
        start end
        metrics {
          interactions { value suppressed } uniquePatrons { value suppressed }
          newPatrons { value suppressed } returningPatrons { value suppressed }
          averageSatisfaction { value suppressed } ratingCount { value suppressed }
          byChannel { channel interactions { value suppressed } uniquePatrons { value suppressed } }
          byPatronType { patronType interactions { value suppressed } uniquePatrons { value suppressed } }
          fundingAttributed { amount currency } costPerInteraction { amount currency }
        }
      }
      totals { interactions { value suppressed } uniquePatrons { value suppressed } }
    }
    totals { interactions { value suppressed } uniquePatrons { value suppressed } fundingAttributed { amount currency } }
  }
}";

const RECORD: &str = "mutation Sync($input: RecordInteractionsInput!) {
  recordInteractions(input: $input) { created alreadyPresent }
}";

/// Name fragments a search box sees; short ones match many patrons, so pages fill.
const SEARCH_TERMS: &[&str] = &["a", "e", "an", "ar", "el", "in", "ma", "on", "er", "li", "ra", "son"];

const KINDS: &[&str] =
    &["VISIT", "LOAN", "REFERENCE_QUESTION", "EVENT_ATTENDANCE", "E_RESOURCE_ACCESS", "CONSULTATION"];
const CHANNELS: &[&str] = &["IN_PERSON", "WEB", "MOBILE_APP", "EMAIL", "CHAT", "EMBEDDED_COURSE"];

/// Everything the scenarios need, read once from the running server.
pub struct Context {
    catalogue: Arc<Vec<u8>>,
    healthz: Arc<Vec<u8>>,
    patron_app: Arc<Vec<u8>>,
    patron_tokens: Vec<Arc<str>>,
    staff: Arc<str>,
    partner: Arc<str>,
    funders: Vec<(String, Arc<str>)>,
    services: Vec<String>,
    patrons: Vec<String>,
    /// The last day of the most recent whole month: one-year report windows end on or before it.
    report_end: NaiveDate,
    counter: AtomicU64,
    run: String,
    /// Whether scenario (c) includes recommendations (the schema has them).
    pub recommendations: Option<String>,
}

async fn gql(server: &ServerProcess, token: Option<&str>, query: &str, variables: Value) -> anyhow::Result<Value> {
    let mut request = server.http.post(format!("{}/graphql", server.base)).json(&json!({
        "query": query, "variables": variables
    }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await?.json().await?;
    if body["errors"].as_array().is_some_and(|e| !e.is_empty()) {
        bail!("set-up query failed: {}", body["errors"]);
    }
    Ok(body["data"].clone())
}

fn uuid_of(id: &str) -> anyhow::Result<uuid::Uuid> {
    decode_global_id(&ID(id.to_owned())).map(|(_, uuid)| uuid).context("bad global id from the server")
}

fn body(query: &str, variables: Value) -> Arc<Vec<u8>> {
    Arc::new(serde_json::to_vec(&json!({ "query": query, "variables": variables })).unwrap_or_default())
}

impl Context {
    pub async fn load(server: &ServerProcess, tokens: &Tokens) -> anyhow::Result<Self> {
        let staff = tokens.staff()?;
        let services: Vec<String> =
            gql(server, Some(&staff), "{ services(first: 100) { nodes { id active } } }", json!({})).await?["services"]
                ["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["active"].as_bool() == Some(true))
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect();
        let mut patrons = Vec::new();
        let mut after = Value::Null;
        for _ in 0..10 {
            let data = gql(
                server,
                Some(&staff),
                "query($after: String) { patrons(first: 100, after: $after, filter: { statuses: [ACTIVE] }) { nodes { id } pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
            )
            .await?;
            let page = &data["patrons"];
            patrons.extend(
                page["nodes"].as_array().into_iter().flatten().filter_map(|n| n["id"].as_str().map(str::to_owned)),
            );
            if page["pageInfo"]["hasNextPage"].as_bool() != Some(true) {
                break;
            }
            after = page["pageInfo"]["endCursor"].clone();
        }
        if services.is_empty() || patrons.is_empty() {
            bail!("the library has no active services or patrons");
        }
        let mut patron_tokens = Vec::with_capacity(patrons.len());
        for id in &patrons {
            patron_tokens.push(Arc::from(tokens.patron(uuid_of(id)?)?));
        }
        let mut funders = Vec::new();
        let data =
            gql(server, Some(&staff), "{ funders(first: 50) { nodes { id fundings { id } } } }", json!({})).await?;
        for funder in data["funders"]["nodes"].as_array().into_iter().flatten() {
            let funded = funder["fundings"].as_array().is_some_and(|f| !f.is_empty());
            if let (Some(id), true) = (funder["id"].as_str(), funded) {
                funders.push((id.to_owned(), Arc::from(tokens.funder(uuid_of(id)?)?)));
            }
        }
        if funders.is_empty() {
            bail!("the library has no funder with grants");
        }
        let recommendations = recommendations_selection(server, &staff).await?;
        let patron_app = format!(
            "{{ me {{ id name patronType consents {{ purpose granted recordedAt }} interactions(first: 20) {{ nodes {{ id kind channel occurredAt rating comment service {{ id name }} }} }} {} }} }}",
            recommendations.as_deref().unwrap_or("")
        );
        let today = Utc::now().date_naive();
        let month_start = today.with_day(1).unwrap_or(today);
        Ok(Self {
            catalogue: body(CATALOGUE, json!({})),
            healthz: Arc::new(Vec::new()),
            patron_app: body(&patron_app, json!({})),
            patron_tokens,
            staff: Arc::from(staff),
            partner: Arc::from(tokens.partner()?),
            funders,
            services,
            patrons,
            report_end: month_start - Duration::days(1),
            counter: AtomicU64::new(0),
            run: uuid::Uuid::now_v7().simple().to_string(),
            recommendations,
        })
    }

    pub fn call(&self, scenario: Scenario, rng: &mut StdRng) -> Call {
        match scenario {
            Scenario::Healthz => {
                Call { get: true, path: "/healthz", token: None, body: self.healthz.clone(), items: 0 }
            }
            Scenario::Catalogue => self.post(None, self.catalogue.clone(), 0),
            Scenario::PatronApp => {
                let token = self.patron_tokens.choose(rng).cloned();
                self.post(token, self.patron_app.clone(), 0)
            }
            Scenario::StaffSearch(page) => {
                let term = SEARCH_TERMS.choose(rng).copied().unwrap_or("a");
                self.post(Some(self.staff.clone()), body(SEARCH, json!({ "first": page, "text": term })), 0)
            }
            Scenario::FunderReport => self.report(),
            Scenario::PartnerBatch => self.batch(rng, PARTNER_BATCH),
            Scenario::Mix => match rng.random_range(0..100) {
                0..35 => self.call(Scenario::Catalogue, rng),
                35..70 => self.call(Scenario::PatronApp, rng),
                70..85 => self.call(Scenario::StaffSearch(20), rng),
                85..95 => self.report(),
                _ => self.batch(rng, MIX_BATCH),
            },
        }
    }

    fn post(&self, token: Option<Arc<str>>, body: Arc<Vec<u8>>, items: u64) -> Call {
        Call { get: false, path: "/graphql", token, body, items }
    }

    /// A one-year monthly report whose window differs from call to call (funder and last month),
    /// so the report cache does not answer it: this measures the roll-ups, not the cache.
    fn report(&self) -> Call {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let (funder, token) = &self.funders[(n % self.funders.len() as u64) as usize];
        // 365 end days per funder with exact one-year windows, then the same with the start
        // moved up to six days later: thousands of distinct windows before any repeats.
        let round = n / self.funders.len() as u64;
        let to = self.report_end - Duration::days((round % 365) as i64);
        let from = to.checked_sub_months(Months::new(12)).map_or(to, |d| d + Duration::days(1));
        let from = from + Duration::days(((round / 365) % 7) as i64);
        let variables = json!({ "funder": funder, "from": from.to_string(), "to": to.to_string() });
        self.post(Some(token.clone()), body(REPORT, variables), 0)
    }

    fn batch(&self, rng: &mut StdRng, size: usize) -> Call {
        let first = self.counter.fetch_add(size as u64, Ordering::Relaxed);
        let now = Utc::now();
        let items: Vec<Value> = (0..size as u64)
            .map(|i| {
                let mut item = json!({
                    "serviceId": self.services.choose(rng),
                    "kind": KINDS.choose(rng),
                    "channel": CHANNELS.choose(rng),
                    "occurredAt": (now - Duration::minutes(rng.random_range(1..60 * 24 * 30))).to_rfc3339(),
                    "source": "bench",
                    "externalId": format!("{}-{}", self.run, first + i),
                });
                if rng.random_bool(0.97) {
                    item["patronId"] = json!(self.patrons.choose(rng));
                } else {
                    item["patronType"] = json!("PUBLIC");
                }
                if rng.random_bool(0.2) {
                    item["rating"] = json!(rng.random_range(1..=5));
                }
                item
            })
            .collect();
        let body = body(RECORD, json!({ "input": { "interactions": items } }));
        self.post(Some(self.partner.clone()), body, size as u64)
    }

    pub fn staff_token(&self) -> Arc<str> {
        self.staff.clone()
    }
}

/// The recommendations selection for scenario (c), when the schema has a `recommendations`
/// field on `Patron` (queried through `me`); `None` otherwise.
async fn recommendations_selection(server: &ServerProcess, staff: &str) -> anyhow::Result<Option<String>> {
    let data = gql(
        server,
        Some(staff),
        "{ __type(name: \"Patron\") { fields { name args { name } type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }",
        json!({}),
    )
    .await?;
    let Some(field) = data["__type"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"].as_str().is_some_and(|n| n.to_ascii_lowercase().contains("recommend")))
    else {
        return Ok(None);
    };
    let name = field["name"].as_str().unwrap_or("recommendations");
    let has_first = field["args"].as_array().into_iter().flatten().any(|a| a["name"] == "first");
    let mut ty = &field["type"];
    while ty["name"].is_null() && !ty["ofType"].is_null() {
        ty = &ty["ofType"];
    }
    let type_name = ty["name"].as_str().unwrap_or_default();
    let selection = selection_of(server, staff, type_name, 2).await?;
    let args = if has_first { "(first: 5)" } else { "" };
    Ok(Some(format!("{name}{args} {selection}")))
}

/// Scalar fields of `type_name` and, `depth` levels down, of its `nodes` and `service` fields.
async fn selection_of(server: &ServerProcess, staff: &str, type_name: &str, depth: u32) -> anyhow::Result<String> {
    let data = gql(
        server,
        Some(staff),
        "query($n: String!) { __type(name: $n) { kind fields { name args { name type { kind } } type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }",
        json!({ "n": type_name }),
    )
    .await?;
    let mut parts = Vec::new();
    for field in data["__type"]["fields"].as_array().into_iter().flatten() {
        let required_args = field["args"].as_array().into_iter().flatten().any(|a| a["type"]["kind"] == "NON_NULL");
        if required_args {
            continue;
        }
        let mut ty = &field["type"];
        while ty["name"].is_null() && !ty["ofType"].is_null() {
            ty = &ty["ofType"];
        }
        let name = field["name"].as_str().unwrap_or_default();
        match ty["kind"].as_str() {
            Some("SCALAR" | "ENUM") => parts.push(name.to_owned()),
            Some("OBJECT") if depth > 0 && matches!(name, "nodes" | "service") => {
                let inner =
                    Box::pin(selection_of(server, staff, ty["name"].as_str().unwrap_or_default(), depth - 1)).await?;
                parts.push(format!("{name} {inner}"));
            }
            _ => {}
        }
    }
    if parts.is_empty() {
        parts.push("__typename".into());
    }
    Ok(format!("{{ {} }}", parts.join(" ")))
}
