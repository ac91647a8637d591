//! Forged and stale tokens are all `UNAUTHENTICATED`; signing keys are published and rotate.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rapport::auth::{Role, TokenRequest};
use rapport_tests::{TestApp, TestOptions, server::TEST_JWT_SECRET, spawn_app, spawn_app_with};
use serde_json::{Value, json};

const WHO: &str = "{ viewer { authenticated role } }";

fn key_file(name: &str) -> String {
    format!("{}/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn key_pem(name: &str) -> Vec<u8> {
    std::fs::read(key_file(name)).expect("test key fixture")
}

fn rs256_options(current: &str) -> TestOptions {
    TestOptions::default()
        .with("JWT_ALGORITHM", "RS256")
        .with("JWT_PRIVATE_KEY_FILE", &key_file(&format!("{current}.private.pem")))
        .with("JWT_PUBLIC_KEY_FILE", &key_file(&format!("{current}.public.pem")))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims the server would accept, as an admin.
fn claims() -> Value {
    json!({
        "sub": "forged-admin", "role": "ADMIN", "iss": "rapport", "aud": "rapport-api",
        "exp": now() + 600, "nbf": now() - 5, "iat": now() - 5, "jti": uuid::Uuid::now_v7().to_string(),
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn sign(algorithm: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign test token")
}

fn hs256(app: &TestApp, claims: &Value, secret: &[u8]) -> String {
    sign(Algorithm::HS256, Some(app.state.jwt.current_kid()), claims, &EncodingKey::from_secret(secret))
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

fn admin_request() -> TokenRequest {
    TokenRequest { role: Role::Admin, subject: "admin-1".into(), funder_id: None, scopes: vec![], ttl: None }
}

#[track_caller]
fn header_kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.expect("tokens carry a kid")
}

async fn who(app: &TestApp, token: &str) -> rapport_tests::GqlResponse {
    app.client.query(Some(token), WHO, json!({})).await
}

/// The server refuses `token` as unauthenticated (401 when the signature or claims are bad).
async fn refused(app: &TestApp, what: &str, token: &str) {
    let resp = who(app, token).await;
    assert_eq!(resp.error_code().as_deref(), Some("UNAUTHENTICATED"), "{what} was not refused: {:#}", resp.body);
    assert!(resp.data().is_null() || resp.data()["viewer"].is_null(), "{what} leaked data: {:#}", resp.body);
    assert_eq!(resp.status, 401, "{what}");
}

async fn accepted(app: &TestApp, what: &str, token: &str) {
    let resp = who(app, token).await;
    assert!(resp.errors().is_empty(), "{what} was refused: {:#}", resp.body);
    assert_eq!(resp.data()["viewer"]["authenticated"], true, "{what}");
}

#[tokio::test]
async fn forged_hs256_tokens_are_unauthenticated() {
    let app = spawn_app().await;
    let secret = TEST_JWT_SECRET.as_bytes();
    // The forger's tooling is right: with the real secret and claims, the token works.
    accepted(&app, "a correctly signed token", &hs256(&app, &claims(), secret)).await;

    // alg: none, with and without a signature.
    let header = json!({ "alg": "none", "typ": "JWT", "kid": app.state.jwt.current_kid() });
    let unsigned = format!("{}.{}.", b64(&header), b64(&claims()));
    refused(&app, "alg none", &unsigned).await;
    let valid = hs256(&app, &claims(), secret);
    let signature = valid.rsplit('.').next().unwrap();
    refused(&app, "alg none with a signature", &format!("{}.{}.{signature}", b64(&header), b64(&claims()))).await;
    let header = json!({ "alg": "None", "typ": "JWT" });
    refused(&app, "alg None without kid", &format!("{}.{}.", b64(&header), b64(&claims()))).await;

    // A real staff token with its payload changed to ADMIN.
    let staff = app.staff_token();
    let mut parts: Vec<&str> = staff.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = json!("ADMIN");
    let tampered = b64(&payload);
    parts[1] = &tampered;
    refused(&app, "a tampered payload", &parts.join(".")).await;

    refused(&app, "the wrong key", &hs256(&app, &claims(), b"another-secret-that-is-at-least-32-bytes")).await;
    refused(&app, "an expired token", &hs256(&app, &with(claims(), "exp", json!(now() - 3600)), secret)).await;
    refused(&app, "a token not yet valid", &hs256(&app, &with(claims(), "nbf", json!(now() + 3600)), secret)).await;
    refused(&app, "the wrong issuer", &hs256(&app, &with(claims(), "iss", json!("someone-else")), secret)).await;
    refused(&app, "the wrong audience", &hs256(&app, &with(claims(), "aud", json!("another-api")), secret)).await;
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    refused(&app, "a token without exp", &hs256(&app, &no_exp, secret)).await;
    let unknown_kid = sign(Algorithm::HS256, Some("no-such-key"), &claims(), &EncodingKey::from_secret(secret));
    refused(&app, "an unknown kid", &unknown_kid).await;
    refused(&app, "an unknown role", &hs256(&app, &with(claims(), "role", json!("ROOT")), secret)).await;
    refused(&app, "garbage", "not.a.token").await;
}

#[tokio::test]
async fn a_revoked_jti_is_unauthenticated() {
    let app = spawn_app().await;
    let token = app.admin_token();
    accepted(&app, "a fresh token", &token).await;
    app.client.query(Some(&token), "mutation { logout }", json!({})).await.ok();
    let resp = who(&app, &token).await;
    resp.expect_code("UNAUTHENTICATED");
    assert!(resp.data().is_null(), "{:#}", resp.body);
    // Over GET too, and inside a batch.
    let resp = app
        .client
        .http
        .get(app.url("/graphql"))
        .query(&[("query", WHO)])
        .bearer_auth(&token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body:#}");
    // A revoked token is refused before anything runs, like any other bad token: 401.
    let batch = app.client.post_json(Some(&token), &json!([{ "query": WHO }, { "query": WHO }])).await;
    assert_eq!(batch.status, 401, "{:#}", batch.body);
    batch.expect_code("UNAUTHENTICATED");
    assert!(batch.header("www-authenticate").is_some_and(|h| h.contains("invalid_token")));
}

#[tokio::test]
async fn rs256_refuses_hs256_tokens_signed_with_its_public_key() {
    let app = spawn_app_with(rs256_options("rsa-a")).await;
    let public = key_pem("rsa-a.public.pem");
    let kid = app.state.jwt.current_kid().to_owned();
    // The classic confusion: HS256 with the (public) PEM as the HMAC secret.
    let confused = sign(Algorithm::HS256, Some(&kid), &claims(), &EncodingKey::from_secret(&public));
    refused(&app, "HS256 signed with the RS256 public key", &confused).await;
    let confused = sign(Algorithm::HS256, None, &claims(), &EncodingKey::from_secret(&public));
    refused(&app, "HS256 signed with the public key, no kid", &confused).await;
    // An RS256 token signed by another key pair, claiming the server's kid.
    let other = EncodingKey::from_rsa_pem(&key_pem("rsa-b.private.pem")).unwrap();
    refused(&app, "RS256 signed with another key", &sign(Algorithm::RS256, Some(&kid), &claims(), &other)).await;
    // The server's own tokens (and logins) work.
    let (token, _) = app.state.jwt.mint(&admin_request()).unwrap();
    assert_eq!(header_kid(&token), kid);
    assert_eq!(jsonwebtoken::decode_header(&token).unwrap().alg, Algorithm::RS256);
    accepted(&app, "an RS256 token from the server", &token).await;
    let own = EncodingKey::from_rsa_pem(&key_pem("rsa-a.private.pem")).unwrap();
    accepted(&app, "RS256 forged with the real private key", &sign(Algorithm::RS256, Some(&kid), &claims(), &own))
        .await;
    refused(
        &app,
        "an expired RS256 token",
        &sign(Algorithm::RS256, Some(&kid), &with(claims(), "exp", json!(now() - 3600)), &own),
    )
    .await;
}

#[tokio::test]
async fn jwks_publishes_the_public_keys() {
    // HS256: nothing to publish.
    let app = spawn_app().await;
    let resp = app.client.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({ "keys": [] }));

    // RS256: the key, with `n` and `e`, verifying the server's tokens.
    let app = spawn_app_with(rs256_options("rsa-a")).await;
    let resp = app.client.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    let body: Value = resp.json().await.unwrap();
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{body:#}");
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], app.state.jwt.current_kid());
    assert!(key.get("d").is_none(), "a private part was published");
    let (token, _) = app.state.jwt.mint(&admin_request()).unwrap();
    let decoding = DecodingKey::from_rsa_components(key["n"].as_str().unwrap(), key["e"].as_str().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["rapport-api"]);
    assert!(jsonwebtoken::decode::<Value>(&token, &decoding, &validation).is_ok(), "the published key must verify");

    // EdDSA: an OKP key with `x`.
    let app = spawn_app_with(
        TestOptions::default()
            .with("JWT_ALGORITHM", "EdDSA")
            .with("JWT_PRIVATE_KEY_FILE", &key_file("ed-a.private.pem"))
            .with("JWT_PUBLIC_KEY_FILE", &key_file("ed-a.public.pem")),
    )
    .await;
    let body: Value =
        app.client.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let key = &body["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["kid"], app.state.jwt.current_kid());
    let decoding = DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let (token, _) = app.state.jwt.mint(&admin_request()).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["rapport-api"]);
    assert!(jsonwebtoken::decode::<Value>(&token, &decoding, &validation).is_ok());
    accepted(&app, "an EdDSA token", &token).await;
    let confused = sign(
        Algorithm::HS256,
        Some(app.state.jwt.current_kid()),
        &claims(),
        &EncodingKey::from_secret(&key_pem("ed-a.public.pem")),
    );
    refused(&app, "HS256 signed with the EdDSA public key", &confused).await;
}

#[tokio::test]
async fn after_a_key_rotation_old_tokens_verify_until_they_expire() {
    let before = spawn_app_with(rs256_options("rsa-a")).await;
    let (old_token, _) = before.state.jwt.mint(&admin_request()).unwrap();
    let old_kid = header_kid(&old_token);

    let after =
        spawn_app_with(rs256_options("rsa-b").with("JWT_PREVIOUS_PUBLIC_KEYS_FILE", &key_file("rsa-a.public.pem")))
            .await;
    accepted(&after, "a token signed by the previous key", &old_token).await;
    let (new_token, _) = after.state.jwt.mint(&admin_request()).unwrap();
    assert_ne!(header_kid(&new_token), old_kid, "new tokens use the new key");
    accepted(&after, "a token signed by the new key", &new_token).await;
    refused(&before, "a token of the new key at a server that never had it", &new_token).await;
    let body: Value =
        after.client.http.get(after.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = body["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, vec![after.state.jwt.current_kid(), old_kid.as_str()], "current key first, then the old one");
    // An expired token of the old key is still refused.
    let own = EncodingKey::from_rsa_pem(&key_pem("rsa-a.private.pem")).unwrap();
    let stale = sign(Algorithm::RS256, Some(&old_kid), &with(claims(), "exp", json!(now() - 3600)), &own);
    refused(&after, "an expired token of the previous key", &stale).await;

    // Once the old key is dropped from the ring, its tokens stop working.
    let later = spawn_app_with(rs256_options("rsa-b")).await;
    refused(&later, "a token of a retired key", &old_token).await;

    // HS256 rotates the same way, with the previous secrets.
    let hs_before = spawn_app().await;
    let (old_hs, _) = hs_before.state.jwt.mint(&admin_request()).unwrap();
    let hs_after = spawn_app_with(
        TestOptions::default()
            .with("JWT_SECRET", "a-brand-new-secret-of-at-least-32-bytes!")
            .with("JWT_PREVIOUS_SECRETS", TEST_JWT_SECRET),
    )
    .await;
    accepted(&hs_after, "an HS256 token of the previous secret", &old_hs).await;
    let (new_hs, _) = hs_after.state.jwt.mint(&admin_request()).unwrap();
    refused(&hs_before, "an HS256 token of the new secret at the old server", &new_hs).await;
}
