//! Logins and sessions: account and patron logins, refresh rotation and reuse detection, logout,
//! throttling, account administration, PINs, and the roles matrix of these operations.

use std::time::Instant;

use rapport::{
    auth::Scope,
    config::Settings,
    seed::{self, DemoScale},
};
use rapport_tests::{GqlResponse, TestApp, TestOptions, server::spawn_on, spawn_app, spawn_app_with};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

pub(crate) const PASSWORD: &str = "correct horse battery staple";

pub(crate) const LOGIN: &str = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) {
    accessToken tokenType expiresAt expiresIn refreshToken refreshExpiresAt
    viewer { authenticated role subject account { email role displayName } } } }";
const PATRON_LOGIN: &str = "mutation($c: String!, $p: String!) { patronLogin(cardNumber: $c, pin: $p) {
    accessToken refreshToken viewer { role subject patron { name cardNumber } } } }";
const REFRESH: &str = "mutation($t: String!) { refreshToken(token: $t) { accessToken refreshToken viewer { role } } }";
const LOGOUT: &str = "mutation($r: String) { logout(refreshToken: $r) }";
const VIEWER: &str = "{ viewer { authenticated role subject } }";
const CREATE_ACCOUNT: &str = "mutation($i: CreateAccountInput!) { createAccount(input: $i) { id email role displayName disabled funder { name } } }";

pub(crate) fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("no string at {pointer} in {value:#}"))
}

#[track_caller]
pub(crate) fn expect_field(resp: &GqlResponse, code: &str, field: &str) {
    resp.expect_code(code);
    assert_eq!(resp.errors()[0]["extensions"]["field"], field, "{:#}", resp.body);
}

/// Create an account through the API as an (operator-token) admin; returns its global id.
pub(crate) async fn create_account(app: &TestApp, email: &str, role: &str, funder: Option<&str>) -> String {
    let resp = app
        .client
        .query(
            Some(&app.admin_token()),
            CREATE_ACCOUNT,
            json!({ "i": { "email": email, "password": PASSWORD, "role": role, "funderId": funder,
                           "displayName": format!("{role} person") } }),
        )
        .await;
    str_at(resp.ok(), "/createAccount/id").to_owned()
}

pub(crate) async fn login(app: &TestApp, email: &str, password: &str) -> GqlResponse {
    app.client.query(None, LOGIN, json!({ "e": email, "p": password })).await
}

/// Log in and return (access token, refresh token).
pub(crate) async fn session(app: &TestApp, email: &str) -> (String, String) {
    let resp = login(app, email, PASSWORD).await;
    let data = resp.ok();
    (str_at(data, "/login/accessToken").to_owned(), str_at(data, "/login/refreshToken").to_owned())
}

async fn viewer_role(app: &TestApp, token: &str) -> GqlResponse {
    app.client.query(Some(token), VIEWER, json!({})).await
}

async fn create_patron(app: &TestApp, card: &str) -> String {
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: CreatePatronInput!) { createPatron(input: $i) { id } }",
            json!({ "i": { "cardNumber": card, "name": format!("Patron {card}"), "patronType": "PUBLIC" } }),
        )
        .await;
    str_at(resp.ok(), "/createPatron/id").to_owned()
}

async fn set_pin(app: &TestApp, patron: &str, pin: &str) -> GqlResponse {
    app.client
        .query(
            Some(&app.staff_token()),
            "mutation($p: ID!, $pin: String!) { setPatronPin(patronId: $p, pin: $pin) { id } }",
            json!({ "p": patron, "pin": pin }),
        )
        .await
}

#[tokio::test]
async fn an_account_logs_in_and_uses_its_token() {
    let app = spawn_app().await;
    create_account(&app, "Ada@Example.org", "STAFF", None).await;

    // Emails are matched case-insensitively (stored lower-cased).
    let resp = login(&app, "  ADA@example.ORG ", PASSWORD).await;
    let data = resp.ok()["login"].clone();
    assert_eq!(data["tokenType"], "Bearer");
    assert_eq!(data["viewer"]["role"], "STAFF");
    assert_eq!(data["viewer"]["authenticated"], true);
    assert_eq!(data["viewer"]["account"]["email"], "ada@example.org");
    let expires_in = data["expiresIn"].as_i64().unwrap();
    assert!((890..=900).contains(&expires_in), "access tokens live 15 minutes by default: {expires_in}");
    let access = str_at(&data, "/accessToken");
    let refresh = str_at(&data, "/refreshToken");
    assert!(refresh.starts_with("rrt_") && refresh.len() > 40);
    let refresh_expires = chrono::DateTime::parse_from_rfc3339(str_at(&data, "/refreshExpiresAt")).unwrap();
    let days = (refresh_expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((29..=30).contains(&days), "refresh tokens live 30 days by default");

    // The token works as staff: patrons can be listed, accounts cannot.
    let resp = app.client.query(Some(access), "{ patrons(first: 1) { edges { cursor } } }", json!({})).await;
    resp.ok();
    let resp = app.client.query(Some(access), "{ accounts(first: 1) { edges { cursor } } }", json!({})).await;
    resp.expect_code("FORBIDDEN");
    let resp = app.client.query(Some(access), "{ viewer { role account { email } } }", json!({})).await;
    assert_eq!(resp.ok()["viewer"]["account"]["email"], "ada@example.org");

    // Only the digest of the refresh token is stored.
    let backend = app.state.db.get_database_backend();
    let rows = app
        .state
        .db
        .query_all_raw(Statement::from_string(backend, "SELECT token_hash FROM refresh_token"))
        .await
        .unwrap();
    let stored: Vec<String> = rows.iter().map(|row| row.try_get::<String>("", "token_hash").unwrap()).collect();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], refresh);
    assert_eq!(stored[0].len(), 64);
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = spawn_app_with(TestOptions::default().with("LOGIN_MAX_FAILURES", "100")).await;
    create_account(&app, "grace@example.org", "ADMIN", None).await;
    // Warm up both paths once.
    login(&app, "grace@example.org", "wrong password!").await;
    login(&app, "nobody@example.org", PASSWORD).await;

    let mut wrong_password = Vec::new();
    let mut unknown_email = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let a = login(&app, "grace@example.org", "wrong password!").await;
        wrong_password.push(started.elapsed());
        let started = Instant::now();
        let b = login(&app, "nobody@example.org", PASSWORD).await;
        unknown_email.push(started.elapsed());
        a.expect_code("UNAUTHENTICATED");
        b.expect_code("UNAUTHENTICATED");
        assert_eq!(a.errors()[0]["message"], "invalid credentials");
        assert_eq!(a.body, b.body, "the two failures must be indistinguishable");
    }
    wrong_password.sort();
    unknown_email.sort();
    let (a, b) = (wrong_password[2].as_secs_f64(), unknown_email[2].as_secs_f64());
    println!("median login failure: wrong password {a:.4} s, unknown email {b:.4} s");
    let ratio = a.max(b) / a.min(b);
    assert!(ratio < 3.0, "timings differ too much: wrong password {a} s, unknown email {b} s");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_session() {
    let app = spawn_app().await;
    create_account(&app, "staff@example.org", "STAFF", None).await;
    let (access1, refresh1) = session(&app, "staff@example.org").await;

    let resp = app.client.query(None, REFRESH, json!({ "t": refresh1 })).await;
    let data = resp.ok()["refreshToken"].clone();
    let access2 = str_at(&data, "/accessToken").to_owned();
    let refresh2 = str_at(&data, "/refreshToken").to_owned();
    assert_ne!(refresh1, refresh2);
    assert_eq!(data["viewer"]["role"], "STAFF");
    viewer_role(&app, &access2).await.ok();
    viewer_role(&app, &access1).await.ok();

    // The old refresh token was rotated: presenting it again is theft, and ends the session.
    let resp = app.client.query(None, REFRESH, json!({ "t": refresh1 })).await;
    resp.expect_code("UNAUTHENTICATED");
    let resp = app.client.query(None, REFRESH, json!({ "t": refresh2 })).await;
    resp.expect_code("UNAUTHENTICATED");
    // Every access token of the session is revoked with it.
    viewer_role(&app, &access2).await.expect_code("UNAUTHENTICATED");
    viewer_role(&app, &access1).await.expect_code("UNAUTHENTICATED");

    // Another login is a separate session and is unaffected.
    let (access3, refresh3) = session(&app, "staff@example.org").await;
    viewer_role(&app, &access3).await.ok();
    app.client.query(None, REFRESH, json!({ "t": refresh3 })).await.ok();

    // Garbage is refused the same way.
    app.client.query(None, REFRESH, json!({ "t": "rrt_nonsense" })).await.expect_code("UNAUTHENTICATED");
}

#[tokio::test]
async fn logout_revokes_the_token_and_the_session_across_restarts() {
    let app = spawn_app().await;
    create_account(&app, "staff@example.org", "STAFF", None).await;
    let (access, refresh) = session(&app, "staff@example.org").await;
    let (other_access, _) = session(&app, "staff@example.org").await;
    viewer_role(&app, &access).await.ok();

    let resp = app.client.query(Some(&access), LOGOUT, json!({})).await;
    assert_eq!(resp.ok()["logout"], true);
    let resp = viewer_role(&app, &access).await;
    resp.expect_code("UNAUTHENTICATED");
    app.client.query(None, REFRESH, json!({ "t": refresh })).await.expect_code("UNAUTHENTICATED");
    // Only that session ended.
    viewer_role(&app, &other_access).await.ok();

    // Anonymous logout without a refresh token is refused.
    app.client.query(None, LOGOUT, json!({})).await.expect_code("UNAUTHENTICATED");

    // The revocation is in the database: a restarted (or second) instance refuses the token too.
    let second = spawn_on(app.database.clone(), TestOptions::default()).await;
    viewer_role(&second, &access).await.expect_code("UNAUTHENTICATED");
    viewer_role(&second, &other_access).await.ok();

    // An operator token (no session) is revoked by its jti.
    let operator = app.staff_token();
    app.client.query(Some(&operator), LOGOUT, json!({})).await.ok();
    viewer_role(&app, &operator).await.expect_code("UNAUTHENTICATED");
}

#[tokio::test]
async fn the_revocation_check_costs_no_sql_once_warm() {
    let app = spawn_app().await;
    let token = app.staff_token();
    viewer_role(&app, &token).await.ok();
    let before = app.sql_statements().await;
    for _ in 0..5 {
        viewer_role(&app, &app.staff_token()).await.ok();
    }
    let after = app.sql_statements().await;
    assert_eq!(after, before, "checking revocations ran SQL on a warm cache");
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_and_per_address() {
    let app =
        spawn_app_with(TestOptions::default().with("LOGIN_MAX_FAILURES", "3").with("LOGIN_MAX_FAILURES_PER_IP", "6"))
            .await;
    create_account(&app, "target@example.org", "STAFF", None).await;
    create_account(&app, "bystander@example.org", "STAFF", None).await;
    for _ in 0..3 {
        login(&app, "target@example.org", "not the password").await.expect_code("UNAUTHENTICATED");
    }
    // Now even the right password is refused until the window ends.
    let resp = login(&app, "target@example.org", PASSWORD).await;
    resp.expect_code("RATE_LIMITED");
    let retry = resp.errors()[0]["extensions"]["retryAfter"].as_u64().unwrap();
    assert!((1..=900).contains(&retry), "retryAfter {retry}");
    assert_eq!(resp.header("retry-after"), Some(retry.to_string()));
    // Other accounts are not locked out by it.
    login(&app, "bystander@example.org", PASSWORD).await.ok();

    // Unknown accounts are counted like known ones (no way to tell them apart).
    for _ in 0..3 {
        login(&app, "ghost@example.org", "whatever password").await.expect_code("UNAUTHENTICATED");
    }
    // Six failures from this address in total: the address is blocked, whatever the account.
    login(&app, "bystander@example.org", PASSWORD).await.expect_code("RATE_LIMITED");
    let resp = app.client.query(None, PATRON_LOGIN, json!({ "c": "NOPE-1", "p": "1234" })).await;
    resp.expect_code("RATE_LIMITED");
}

#[tokio::test]
async fn patrons_log_in_with_card_and_pin_and_change_it() {
    let app = spawn_app().await;
    let patron = create_patron(&app, "C-1001").await;
    let other = create_patron(&app, "C-1002").await;

    // No PIN yet: cannot log in.
    let resp = app.client.query(None, PATRON_LOGIN, json!({ "c": "C-1001", "p": "1234" })).await;
    resp.expect_code("UNAUTHENTICATED");

    expect_field(&set_pin(&app, &patron, "12").await, "BAD_USER_INPUT", "pin");
    expect_field(&set_pin(&app, &patron, "12ab").await, "BAD_USER_INPUT", "pin");
    expect_field(&set_pin(&app, &patron, "1234567890123").await, "BAD_USER_INPUT", "pin");
    set_pin(&app, &patron, "4321").await.ok();

    let resp = app.client.query(None, PATRON_LOGIN, json!({ "c": "c-1001", "p": "4321" })).await;
    let data = resp.ok()["patronLogin"].clone();
    assert_eq!(data["viewer"]["role"], "PATRON");
    assert_eq!(data["viewer"]["patron"]["cardNumber"], "C-1001");
    let access = str_at(&data, "/accessToken").to_owned();
    let refresh = str_at(&data, "/refreshToken").to_owned();
    let resp = app.client.query(Some(&access), "{ me { cardNumber } }", json!({})).await;
    assert_eq!(resp.ok()["me"]["cardNumber"], "C-1001");
    // Patron rules still apply to the logged-in patron.
    let resp =
        app.client.query(Some(&access), "query($id: ID!) { patron(id: $id) { name } }", json!({ "id": other })).await;
    resp.expect_code("FORBIDDEN");

    // Wrong PIN, wrong card: the same answer.
    let a = app.client.query(None, PATRON_LOGIN, json!({ "c": "C-1001", "p": "0000" })).await;
    let b = app.client.query(None, PATRON_LOGIN, json!({ "c": "C-9999", "p": "4321" })).await;
    a.expect_code("UNAUTHENTICATED");
    assert_eq!(a.body, b.body);

    // Changing the PIN needs the current one.
    const CHANGE: &str = "mutation($c: String!, $n: String!) { changeMyPin(currentPin: $c, newPin: $n) { id } }";
    let resp = app.client.query(Some(&access), CHANGE, json!({ "c": "0000", "n": "5678" })).await;
    expect_field(&resp, "BAD_USER_INPUT", "currentPin");
    let resp = app.client.query(Some(&access), CHANGE, json!({ "c": "4321", "n": "56" })).await;
    expect_field(&resp, "BAD_USER_INPUT", "newPin");
    app.client.query(Some(&access), CHANGE, json!({ "c": "4321", "n": "5678" })).await.ok();
    app.client.query(None, PATRON_LOGIN, json!({ "c": "C-1001", "p": "4321" })).await.expect_code("UNAUTHENTICATED");
    app.client.query(None, PATRON_LOGIN, json!({ "c": "C-1001", "p": "5678" })).await.ok();
    // The session that changed it goes on.
    viewer_role(&app, &access).await.ok();
    app.client.query(None, REFRESH, json!({ "t": refresh })).await.ok();

    // A staff reset ends the patron's sessions.
    set_pin(&app, &patron, "9999").await.ok();
    viewer_role(&app, &access).await.expect_code("UNAUTHENTICATED");
}

#[tokio::test]
async fn admins_manage_accounts() {
    let app = spawn_app().await;
    let admin = app.admin_token();
    let create = |input: Value| {
        let app = &app;
        let admin = admin.clone();
        async move { app.client.query(Some(&admin), CREATE_ACCOUNT, json!({ "i": input })).await }
    };
    let base = json!({ "email": "new@example.org", "password": PASSWORD, "role": "STAFF", "displayName": "New" });
    let with = |key: &str, value: Value| {
        let mut input = base.clone();
        input[key] = value;
        input
    };
    expect_field(&create(with("password", json!("too short"))).await, "BAD_USER_INPUT", "input.password");
    expect_field(&create(with("email", json!("not-an-email"))).await, "BAD_USER_INPUT", "input.email");
    expect_field(&create(with("displayName", json!("  "))).await, "BAD_USER_INPUT", "input.displayName");
    expect_field(&create(with("role", json!("FUNDER"))).await, "BAD_USER_INPUT", "input.funderId");
    let created = create(base.clone()).await;
    let account = created.ok()["createAccount"].clone();
    assert_eq!(account["email"], "new@example.org");
    assert_eq!(account["disabled"], false);
    let id = str_at(&account, "/id").to_owned();
    create(with("email", json!("NEW@example.org"))).await.expect_code("CONFLICT");

    // A funder account belongs to a funder and logs in as that funder.
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: CreateFunderInput!) { createFunder(input: $i) { id } }",
            json!({ "i": { "name": "Arts Council", "kind": "GOVERNMENT" } }),
        )
        .await;
    let funder = str_at(resp.ok(), "/createFunder/id").to_owned();
    let mut funder_input = with("role", json!("FUNDER"));
    funder_input["email"] = json!("funder@example.org");
    funder_input["funderId"] = json!(funder);
    let resp = create(funder_input).await;
    assert_eq!(resp.ok()["createAccount"]["funder"]["name"], "Arts Council");
    let resp = login(&app, "funder@example.org", PASSWORD).await;
    assert_eq!(resp.ok()["login"]["viewer"]["role"], "FUNDER");
    let funder_token = str_at(resp.ok(), "/login/accessToken").to_owned();
    let resp = app.client.query(Some(&funder_token), "{ viewer { funder { name } } }", json!({})).await;
    assert_eq!(resp.ok()["viewer"]["funder"]["name"], "Arts Council");

    // The list: admins only, filterable, paginated by email.
    let resp = app
        .client
        .query(Some(&admin), "{ accounts(first: 10) { totalCount edges { node { email role } } } }", json!({}))
        .await;
    assert_eq!(resp.ok()["accounts"]["totalCount"], 2);
    let resp = app
        .client
        .query(
            Some(&admin),
            "{ accounts(first: 1, filter: { roles: [FUNDER] }) { edges { node { email } } pageInfo { hasNextPage } } }",
            json!({}),
        )
        .await;
    assert_eq!(resp.ok()["accounts"]["edges"][0]["node"]["email"], "funder@example.org");
    assert_eq!(resp.ok()["accounts"]["pageInfo"]["hasNextPage"], false);

    // Disable: login refused, current sessions end; enable: login works again.
    let (access, refresh) = session(&app, "new@example.org").await;
    let resp = app
        .client
        .query(
            Some(&admin),
            "mutation($id: ID!) { disableAccount(id: $id) { disabled disabledAt } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(resp.ok()["disableAccount"]["disabled"], true);
    login(&app, "new@example.org", PASSWORD).await.expect_code("UNAUTHENTICATED");
    viewer_role(&app, &access).await.expect_code("UNAUTHENTICATED");
    app.client.query(None, REFRESH, json!({ "t": refresh })).await.expect_code("UNAUTHENTICATED");
    let resp = app
        .client
        .query(Some(&admin), "mutation($id: ID!) { enableAccount(id: $id) { disabled } }", json!({ "id": id }))
        .await;
    assert_eq!(resp.ok()["enableAccount"]["disabled"], false);
    let (access, _) = session(&app, "new@example.org").await;

    // Reset: the old password stops working and sessions end.
    const RESET: &str = "mutation($id: ID!, $p: String!) { resetAccountPassword(id: $id, newPassword: $p) { id } }";
    let resp = app.client.query(Some(&admin), RESET, json!({ "id": id, "p": "short" })).await;
    expect_field(&resp, "BAD_USER_INPUT", "newPassword");
    app.client.query(Some(&admin), RESET, json!({ "id": id, "p": "a brand new passphrase" })).await.ok();
    login(&app, "new@example.org", PASSWORD).await.expect_code("UNAUTHENTICATED");
    login(&app, "new@example.org", "a brand new passphrase").await.ok();
    viewer_role(&app, &access).await.expect_code("UNAUTHENTICATED");

    // Account holders change their own password with the current one.
    let resp = login(&app, "new@example.org", "a brand new passphrase").await;
    let access = str_at(resp.ok(), "/login/accessToken").to_owned();
    const CHANGE: &str =
        "mutation($c: String!, $n: String!) { changeMyPassword(currentPassword: $c, newPassword: $n) { email } }";
    let resp = app.client.query(Some(&access), CHANGE, json!({ "c": "wrong wrong wrong", "n": PASSWORD })).await;
    expect_field(&resp, "BAD_USER_INPUT", "currentPassword");
    app.client.query(Some(&access), CHANGE, json!({ "c": "a brand new passphrase", "n": PASSWORD })).await.ok();
    login(&app, "new@example.org", PASSWORD).await.ok();

    // A logged-in admin cannot disable themselves.
    let admin_id = create_account(&app, "boss@example.org", "ADMIN", None).await;
    let (boss, _) = session(&app, "boss@example.org").await;
    let resp = app
        .client
        .query(Some(&boss), "mutation($id: ID!) { disableAccount(id: $id) { id } }", json!({ "id": admin_id }))
        .await;
    resp.expect_code("CONFLICT");
    // Accounts are nodes (for admins).
    let resp = app
        .client
        .query(Some(&boss), "query($id: ID!) { node(id: $id) { ... on Account { email } } }", json!({ "id": id }))
        .await;
    assert_eq!(resp.ok()["node"]["email"], "new@example.org");
}

/// What each role gets for each identity operation.
#[tokio::test]
async fn identity_operations_follow_the_roles_matrix() {
    let app = spawn_app().await;
    let account = create_account(&app, "someone@example.org", "STAFF", None).await;
    let patron = create_patron(&app, "C-2001").await;
    let patron_uuid = rapport::graphql::ids::decode_global_id(&async_graphql::ID(patron.clone())).unwrap().1;
    let resp = app
        .client
        .query(
            Some(&app.admin_token()),
            "mutation { createPartnerClient(input: { name: \"Sync\", scopes: [PATRONS_READ] }) { client { id } } }",
            json!({}),
        )
        .await;
    let client = str_at(resp.ok(), "/createPartnerClient/client/id").to_owned();
    let funder_token = app.funder_token(Uuid::now_v7());
    let tokens: Vec<(&str, Option<String>)> = vec![
        ("anonymous", None),
        ("patron", Some(app.patron_token(patron_uuid))),
        ("staff", Some(app.staff_token())),
        ("funder", Some(funder_token)),
        ("partner", Some(app.partner_token(&Scope::ALL))),
        ("admin", Some(app.admin_token())),
    ];
    let admin_only: Vec<(&str, Value)> = vec![
        ("{ accounts(first: 1) { edges { cursor } } }", json!({})),
        ("{ partnerClients(first: 1) { edges { cursor } } }", json!({})),
        ("query($id: ID!) { account(id: $id) { email } }", json!({ "id": account })),
        ("query($id: ID!) { partnerClient(id: $id) { name } }", json!({ "id": client })),
        (
            "mutation($i: CreateAccountInput!) { createAccount(input: $i) { id } }",
            json!({ "i": { "email": "x@example.org", "password": PASSWORD, "role": "STAFF", "displayName": "X" } }),
        ),
        ("mutation($id: ID!) { disableAccount(id: $id) { id } }", json!({ "id": account })),
        ("mutation($id: ID!) { enableAccount(id: $id) { id } }", json!({ "id": account })),
        (
            "mutation($id: ID!) { resetAccountPassword(id: $id, newPassword: \"another long password\") { id } }",
            json!({ "id": account }),
        ),
        (
            "mutation { createPartnerClient(input: { name: \"P\", scopes: [SERVICES_READ] }) { clientSecret } }",
            json!({}),
        ),
        ("mutation($id: ID!) { rotatePartnerSecret(id: $id) { clientSecret } }", json!({ "id": client })),
        ("mutation($id: ID!) { revokePartnerClient(id: $id) { active } }", json!({ "id": client })),
    ];
    for (query, vars) in &admin_only {
        for (who, token) in &tokens {
            let resp = app.client.query(token.as_deref(), query, vars.clone()).await;
            match *who {
                "admin" => {
                    resp.ok();
                }
                "anonymous" => resp.expect_code("UNAUTHENTICATED"),
                _ => resp.expect_code("FORBIDDEN"),
            }
        }
    }
    // PINs: staff and admins set them; only patrons change their own.
    set_pin(&app, &patron, "2468").await.ok();
    for (who, token) in &tokens {
        let resp = app
            .client
            .query(
                token.as_deref(),
                "mutation($p: ID!) { setPatronPin(patronId: $p, pin: \"2468\") { id } }",
                json!({ "p": patron }),
            )
            .await;
        match *who {
            "admin" | "staff" => {
                resp.ok();
            }
            "anonymous" => resp.expect_code("UNAUTHENTICATED"),
            _ => resp.expect_code("FORBIDDEN"),
        }
        let resp = app
            .client
            .query(
                token.as_deref(),
                "mutation { changeMyPin(currentPin: \"2468\", newPin: \"2468\") { id } }",
                json!({}),
            )
            .await;
        match *who {
            "patron" => {
                resp.ok();
            }
            "anonymous" => resp.expect_code("UNAUTHENTICATED"),
            _ => resp.expect_code("FORBIDDEN"),
        }
        // Operator tokens name no account, so nobody here can change an account password.
        let resp = app
            .client
            .query(
                token.as_deref(),
                "mutation { changeMyPassword(currentPassword: \"x\", newPassword: \"another long password\") { id } }",
                json!({}),
            )
            .await;
        match *who {
            "anonymous" => resp.expect_code("UNAUTHENTICATED"),
            _ => resp.expect_code("FORBIDDEN"),
        }
        // Everyone may ask who they are.
        app.client.query(token.as_deref(), VIEWER, json!({})).await.ok();
    }
    // The login mutations are public: a failed login is a bad credential, not a missing one.
    login(&app, "nobody@example.org", PASSWORD).await.expect_code("UNAUTHENTICATED");
}

#[tokio::test]
async fn create_admin_bootstraps_the_first_login() {
    let app = spawn_app().await;
    let url = app.database.url.clone();
    let settings = Settings::from_lookup(move |key| match key {
        "DATABASE_URL" => Some(url.clone()),
        _ => None,
    })
    .unwrap();
    let password = rapport::auth::bootstrap::admin_password(Some("bootstrap admin password".into())).unwrap();
    let account = rapport::auth::bootstrap::create_admin(&settings, "Root@Example.org", None, &password).await.unwrap();
    assert_eq!(account.email, "root@example.org");
    let resp = login(&app, "root@example.org", "bootstrap admin password").await;
    assert_eq!(resp.ok()["login"]["viewer"]["role"], "ADMIN");
    let access = str_at(resp.ok(), "/login/accessToken").to_owned();
    app.client.query(Some(&access), "{ accounts(first: 5) { edges { cursor } } }", json!({})).await.ok();
    // Twice is a conflict, and a short password is refused.
    assert!(rapport::auth::bootstrap::create_admin(&settings, "root@example.org", None, &password).await.is_err());
    let short = rapport::auth::bootstrap::admin_password(Some("short".into())).unwrap();
    assert!(rapport::auth::bootstrap::create_admin(&settings, "other@example.org", None, &short).await.is_err());
}

#[tokio::test]
async fn the_demo_library_has_logins() {
    let app = spawn_app().await;
    let scale = DemoScale { patrons: 30, interactions: 300, days: 60, anchor: None };
    seed::generate(&app.state.db, &scale, seed::DEMO_SEED).await.unwrap();
    let written = seed::accounts::seed_demo_accounts(&app.state.db).await.unwrap();
    assert_eq!(written.accounts.len(), 3);
    assert!(!written.patron_cards.is_empty());
    for (email, password, role) in seed::accounts::DEMO_ACCOUNTS {
        let resp = login(&app, email, password).await;
        assert_eq!(resp.ok()["login"]["viewer"]["role"], role.as_str(), "{email}");
    }
    let resp = app
        .client
        .query(None, PATRON_LOGIN, json!({ "c": written.patron_cards[0], "p": seed::accounts::DEMO_PIN }))
        .await;
    assert_eq!(resp.ok()["patronLogin"]["viewer"]["role"], "PATRON");
    // Running it again changes nothing.
    let again = seed::accounts::seed_demo_accounts(&app.state.db).await.unwrap();
    assert!(again.accounts.is_empty());
}
