//! Partner clients: secrets shown once, tokens by mutation and by OAuth 2.0 client credentials,
//! scopes enforced field by field, rotation and revocation.

use base64::{Engine, engine::general_purpose::STANDARD};
use rapport_tests::{GqlResponse, TestApp, TestOptions, spawn_app, spawn_app_with};
use serde_json::{Value, json};

use crate::auth::str_at;

const CREATE_CLIENT: &str = "mutation($i: CreatePartnerClientInput!) { createPartnerClient(input: $i) {
    clientSecret client { id clientId name scopes active createdAt } } }";
const PARTNER_TOKEN: &str = "mutation($id: String!, $s: String!, $scopes: [PartnerScope!]) {
    partnerToken(clientId: $id, clientSecret: $s, scopes: $scopes) { accessToken tokenType expiresIn scopes } }";

struct Client {
    id: String,
    client_id: String,
    secret: String,
}

async fn create_client(app: &TestApp, name: &str, scopes: &[&str]) -> Client {
    let resp = app
        .client
        .query(Some(&app.admin_token()), CREATE_CLIENT, json!({ "i": { "name": name, "scopes": scopes } }))
        .await;
    let data = resp.ok()["createPartnerClient"].clone();
    assert_eq!(data["client"]["active"], true);
    Client {
        id: str_at(&data, "/client/id").to_owned(),
        client_id: str_at(&data, "/client/clientId").to_owned(),
        secret: str_at(&data, "/clientSecret").to_owned(),
    }
}

async fn partner_token(app: &TestApp, client_id: &str, secret: &str, scopes: Option<&[&str]>) -> GqlResponse {
    app.client.query(None, PARTNER_TOKEN, json!({ "id": client_id, "s": secret, "scopes": scopes })).await
}

async fn token_of(app: &TestApp, client: &Client) -> String {
    let resp = partner_token(app, &client.client_id, &client.secret, None).await;
    str_at(resp.ok(), "/partnerToken/accessToken").to_owned()
}

/// `POST /oauth/token` with a form body and optional Basic credentials.
async fn oauth(
    app: &TestApp,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let body = form.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
    let mut request = app
        .client
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = basic {
        request = request.header(
            "authorization",
            format!("Basic {}", STANDARD.encode(format!("{}:{}", encode(id), encode(secret)))),
        );
    }
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// application/x-www-form-urlencoded, as RFC 6749 asks for Basic credentials too.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Staff data for the scope checks: a patron with one interaction.
async fn world(app: &TestApp) -> (String, String) {
    let staff = app.staff_token();
    let service = app
        .client
        .query(
            Some(&staff),
            "mutation { createService(input: { code: \"REF\", name: \"Reference\", category: REFERENCE }) { id } }",
            json!({}),
        )
        .await;
    let service = str_at(service.ok(), "/createService/id").to_owned();
    let patron = app
        .client
        .query(
            Some(&staff),
            "mutation { createPatron(input: { cardNumber: \"P-0001\", name: \"Ada\", patronType: PUBLIC }) { id } }",
            json!({}),
        )
        .await;
    let patron = str_at(patron.ok(), "/createPatron/id").to_owned();
    let interaction = app
        .client
        .query(
            Some(&staff),
            "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { id } }",
            json!({ "i": { "patronId": patron, "serviceId": service, "kind": "VISIT", "channel": "IN_PERSON",
                           "occurredAt": "2026-01-10T10:00:00Z", "staffNotes": "note" } }),
        )
        .await;
    (patron, str_at(interaction.ok(), "/recordInteraction/id").to_owned())
}

#[tokio::test]
async fn a_partner_client_gets_tokens_with_its_scopes() {
    let app = spawn_app().await;
    let (patron, interaction) = world(&app).await;
    let client = create_client(&app, "Campus CRM sync", &["PATRONS_READ", "INTERACTIONS_READ"]).await;
    assert!(client.client_id.starts_with("rpc_"));
    assert!(client.secret.starts_with("rps_") && client.secret.len() > 40);

    // The secret is never shown again: the list has no such field, the table holds a hash.
    let resp = app
        .client
        .query(
            Some(&app.admin_token()),
            "{ partnerClients(first: 10) { totalCount edges { node { clientId name scopes active } } } }",
            json!({}),
        )
        .await;
    let list = resp.ok()["partnerClients"].clone();
    assert_eq!(list["totalCount"], 1);
    assert_eq!(list["edges"][0]["node"]["scopes"], json!(["PATRONS_READ", "INTERACTIONS_READ"]));
    assert!(!resp.body.to_string().contains(&client.secret));

    let resp = partner_token(&app, &client.client_id, &client.secret, None).await;
    let data = resp.ok()["partnerToken"].clone();
    assert_eq!(data["tokenType"], "Bearer");
    assert_eq!(data["scopes"], json!(["PATRONS_READ", "INTERACTIONS_READ"]));
    let token = str_at(&data, "/accessToken").to_owned();
    let resp = app.client.query(Some(&token), "{ viewer { role subject scopes } }", json!({})).await;
    assert_eq!(resp.ok()["viewer"]["role"], "PARTNER");
    assert_eq!(resp.ok()["viewer"]["subject"], client.client_id.as_str());

    // Field by field: patrons:read reads patrons but cannot create them.
    app.client.query(Some(&token), "{ patrons(first: 5) { edges { node { name } } } }", json!({})).await.ok();
    let resp = app
        .client
        .query(
            Some(&token),
            "mutation { createPatron(input: { cardNumber: \"P-0002\", name: \"Bo\", patronType: PUBLIC }) { id } }",
            json!({}),
        )
        .await;
    resp.expect_code("FORBIDDEN");
    let q = "query($id: ID!) { interaction(id: $id) { kind patron { name } } }";
    let resp = app.client.query(Some(&token), q, json!({ "id": interaction })).await;
    assert_eq!(resp.ok()["interaction"]["patron"]["name"], "Ada");
    // Staff notes are never for partners.
    let resp = app
        .client
        .query(Some(&token), "query($id: ID!) { interaction(id: $id) { staffNotes } }", json!({ "id": interaction }))
        .await;
    resp.expect_code("FORBIDDEN");

    // Without patrons:read, `interaction.patron` is FORBIDDEN while the rest of the row reads.
    let narrow = create_client(&app, "Footfall counter", &["INTERACTIONS_READ"]).await;
    let narrow_token = token_of(&app, &narrow).await;
    let resp = app.client.query(Some(&narrow_token), q, json!({ "id": interaction })).await;
    resp.expect_code("FORBIDDEN");
    assert_eq!(resp.data()["interaction"]["kind"], "VISIT", "{:#}", resp.body);
    assert_eq!(resp.errors()[0]["path"], json!(["interaction", "patron"]));
    let resp = app
        .client
        .query(Some(&narrow_token), "query($id: ID!) { patron(id: $id) { name } }", json!({ "id": patron }))
        .await;
    resp.expect_code("FORBIDDEN");

    // Asking for fewer scopes narrows the token; asking for more is refused.
    let resp = partner_token(&app, &client.client_id, &client.secret, Some(&["PATRONS_READ"])).await;
    assert_eq!(resp.ok()["partnerToken"]["scopes"], json!(["PATRONS_READ"]));
    let patrons_only = str_at(resp.ok(), "/partnerToken/accessToken").to_owned();
    let resp = app.client.query(Some(&patrons_only), q, json!({ "id": interaction })).await;
    resp.expect_code("FORBIDDEN");
    let resp = partner_token(&app, &client.client_id, &client.secret, Some(&["PATRONS_WRITE"])).await;
    resp.expect_code("BAD_USER_INPUT");

    // A wrong secret and an unknown client get the same answer.
    let a = partner_token(&app, &client.client_id, "rps_wrong", None).await;
    let b = partner_token(&app, "rpc_unknown", &client.secret, None).await;
    a.expect_code("UNAUTHENTICATED");
    assert_eq!(a.body, b.body);
}

#[tokio::test]
async fn oauth_client_credentials_at_the_token_endpoint() {
    let app = spawn_app().await;
    let client = create_client(&app, "Stock OAuth library", &["PATRONS_READ", "SERVICES_READ"]).await;
    let grant = ("grant_type", "client_credentials");

    // HTTP Basic client authentication.
    let (status, headers, body) = oauth(&app, Some((&client.client_id, &client.secret)), &[grant]).await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["pragma"], "no-cache");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "services:read patrons:read");
    let token = body["access_token"].as_str().unwrap().to_owned();
    app.client.query(Some(&token), "{ patrons(first: 1) { edges { cursor } } }", json!({})).await.ok();

    // Credentials in the body.
    let (status, _, body) = oauth(
        &app,
        None,
        &[grant, ("client_id", &client.client_id), ("client_secret", &client.secret), ("scope", "patrons:read")],
    )
    .await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["scope"], "patrons:read");
    let narrowed = body["access_token"].as_str().unwrap().to_owned();
    let resp = app
        .client
        .query(Some(&narrowed), "{ services(filter: { active: false }) { edges { cursor } } }", json!({}))
        .await;
    resp.expect_code("FORBIDDEN");

    // Bad credentials: 401 invalid_client with a challenge.
    let (status, headers, body) = oauth(&app, Some((&client.client_id, "rps_wrong")), &[grant]).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(headers["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    let (status, _, body) =
        oauth(&app, None, &[grant, ("client_id", "rpc_nobody"), ("client_secret", &client.secret)]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, _, body) = oauth(&app, None, &[grant]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));

    // Standard errors for the rest.
    let (status, _, body) = oauth(&app, Some((&client.client_id, &client.secret)), &[("grant_type", "password")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unsupported_grant_type")));
    let (status, _, body) = oauth(&app, Some((&client.client_id, &client.secret)), &[]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")));
    let (status, _, body) =
        oauth(&app, Some((&client.client_id, &client.secret)), &[grant, ("scope", "interactions:write")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    let (status, _, body) = oauth(&app, Some((&client.client_id, &client.secret)), &[grant, ("scope", "root")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    let (status, _, body) = oauth(
        &app,
        Some((&client.client_id, &client.secret)),
        &[grant, ("client_id", &client.client_id), ("client_secret", &client.secret)],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "two ways to authenticate");
    let (status, _, body) = oauth(&app, None, &[grant, grant]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "repeated parameter");

    // Only form bodies, only POST.
    let resp = app
        .client
        .http
        .post(app.url("/oauth/token"))
        .json(&json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = app.client.http.get(app.url("/oauth/token")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn rotating_and_revoking_partner_clients() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    let client = create_client(&app, "Rotating", &["SERVICES_READ"]).await;
    let old_token = token_of(&app, &client).await;
    app.client.query(Some(&old_token), "{ viewer { role } }", json!({})).await.ok();

    let resp = app
        .client
        .query(
            Some(&admin),
            "mutation($id: ID!) { rotatePartnerSecret(id: $id) { clientSecret client { clientId rotatedAt } } }",
            json!({ "id": client.id }),
        )
        .await;
    let data = resp.ok()["rotatePartnerSecret"].clone();
    assert_eq!(data["client"]["clientId"], client.client_id.as_str(), "the client id stays");
    assert!(data["client"]["rotatedAt"].is_string());
    let new_secret = str_at(&data, "/clientSecret").to_owned();
    assert_ne!(new_secret, client.secret);

    // The old secret and the tokens issued with it stop working; the new secret works.
    partner_token(&app, &client.client_id, &client.secret, None).await.expect_code("UNAUTHENTICATED");
    app.client.query(Some(&old_token), "{ viewer { role } }", json!({})).await.expect_code("UNAUTHENTICATED");
    let rotated = Client { secret: new_secret, ..client };
    let new_token = token_of(&app, &rotated).await;
    app.client.query(Some(&new_token), "{ viewer { role } }", json!({})).await.ok();

    // A partner logging out ends that token only.
    let second = token_of(&app, &rotated).await;
    app.client.query(Some(&second), "mutation { logout }", json!({})).await.ok();
    app.client.query(Some(&second), "{ viewer { role } }", json!({})).await.expect_code("UNAUTHENTICATED");
    app.client.query(Some(&new_token), "{ viewer { role } }", json!({})).await.ok();

    // Revoked: tokens die, no new ones, and it cannot be rotated back to life.
    let resp = app
        .client
        .query(
            Some(&admin),
            "mutation($id: ID!) { revokePartnerClient(id: $id) { active revokedAt } }",
            json!({ "id": rotated.id }),
        )
        .await;
    assert_eq!(resp.ok()["revokePartnerClient"]["active"], false);
    app.client.query(Some(&new_token), "{ viewer { role } }", json!({})).await.expect_code("UNAUTHENTICATED");
    partner_token(&app, &rotated.client_id, &rotated.secret, None).await.expect_code("UNAUTHENTICATED");
    let (status, _, _) =
        oauth(&app, Some((&rotated.client_id, &rotated.secret)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 401);
    let resp = app
        .client
        .query(
            Some(&admin),
            "mutation($id: ID!) { rotatePartnerSecret(id: $id) { clientSecret } }",
            json!({ "id": rotated.id }),
        )
        .await;
    resp.expect_code("CONFLICT");

    // Creating needs a name and at least one scope.
    let resp = app.client.query(Some(&admin), CREATE_CLIENT, json!({ "i": { "name": "X", "scopes": [] } })).await;
    crate::auth::expect_field(&resp, "BAD_USER_INPUT", "input.scopes");
    let resp = app
        .client
        .query(Some(&admin), CREATE_CLIENT, json!({ "i": { "name": " ", "scopes": ["REPORTS_READ"] } }))
        .await;
    crate::auth::expect_field(&resp, "BAD_USER_INPUT", "input.name");
}

#[tokio::test]
async fn the_token_endpoint_is_throttled() {
    let app = spawn_app_with(TestOptions::default().with("LOGIN_MAX_FAILURES", "2")).await;
    let client = create_client(&app, "Throttled", &["SERVICES_READ"]).await;
    for _ in 0..2 {
        let (status, _, _) =
            oauth(&app, Some((&client.client_id, "rps_guess")), &[("grant_type", "client_credentials")]).await;
        assert_eq!(status, 401);
    }
    let (status, headers, body) =
        oauth(&app, Some((&client.client_id, &client.secret)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 429, "{body:#}");
    assert!(headers.contains_key("retry-after"));
    partner_token(&app, &client.client_id, &client.secret, None).await.expect_code("RATE_LIMITED");
}
