//! A small GraphQL client, as a mobile app or partner tool would use it.

use serde_json::{Value, json};

#[derive(Clone)]
pub struct TestClient {
    pub http: reqwest::Client,
    pub endpoint: String,
}

/// A GraphQL response with its HTTP status and headers.
#[derive(Debug, Clone)]
pub struct GqlResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl GqlResponse {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn errors(&self) -> Vec<Value> {
        self.body["errors"].as_array().cloned().unwrap_or_default()
    }

    /// `extensions.code` of the first error, if any.
    pub fn error_code(&self) -> Option<String> {
        self.errors().first().and_then(|e| e["extensions"]["code"].as_str().map(str::to_owned))
    }

    pub fn codes(&self) -> Vec<String> {
        self.errors().iter().filter_map(|e| e["extensions"]["code"].as_str().map(str::to_owned)).collect()
    }

    /// Panic with the body when the response has errors.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert!(self.errors().is_empty(), "unexpected errors (status {}): {:#}", self.status, self.body);
        self.data()
    }

    #[track_caller]
    pub fn expect_code(&self, code: &str) {
        assert_eq!(self.error_code().as_deref(), Some(code), "expected {code}, got: {:#}", self.body);
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
}

impl TestClient {
    pub fn new(address: &str) -> Self {
        let http = reqwest::Client::builder().pool_max_idle_per_host(4).build().expect("http client");
        Self { http, endpoint: format!("{address}/graphql") }
    }

    /// POST a query with optional variables and bearer token.
    pub async fn query(&self, token: Option<&str>, query: &str, variables: Value) -> GqlResponse {
        let body = json!({ "query": query, "variables": variables });
        self.post_json(token, &body).await
    }

    pub async fn post_json(&self, token: Option<&str>, body: &Value) -> GqlResponse {
        let mut request =
            self.http.post(&self.endpoint).header("accept", "application/graphql-response+json").json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Self::read(request.send().await.expect("send request")).await
    }

    pub async fn read(response: reqwest::Response) -> GqlResponse {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        GqlResponse { status, headers, body }
    }
}
