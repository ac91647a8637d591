//! Subscriptions over WebSocket (`graphql-transport-ws` at `/graphql`) with a real client:
//! authentication in `connection_init`, the roles at subscribe time, filters, and events that
//! cross instances through Redis (and keep crossing after Redis restarts).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use rapport::auth::Scope;
use rapport_tests::{
    TestApp, TestOptions,
    redis_server::{RedisServer, SharedRedis},
    server::spawn_on,
    spawn_app, spawn_app_with,
};
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

const FEED: &str = "subscription($s: ID, $b: String) {
    interactionRecorded(serviceId: $s, branch: $b) { id kind branch comment service { code } patron { name } }
}";

/// What the server sent.
#[derive(Debug)]
enum Received {
    Message(Value),
    Closed(Option<u16>),
}

/// A `graphql-transport-ws` client.
struct Ws {
    stream: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Ws {
    async fn connect(app: &TestApp) -> Self {
        let mut request = format!("ws://127.0.0.1:{}/graphql", app.port).into_client_request().unwrap();
        request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("graphql-transport-ws"));
        let (stream, response) = connect_async(request).await.expect("WebSocket upgrade");
        assert_eq!(
            response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()),
            Some("graphql-transport-ws")
        );
        Self { stream }
    }

    /// Connect and send `connection_init` with this payload; returns what came back.
    async fn init(app: &TestApp, payload: Value) -> (Self, Received) {
        let mut ws = Self::connect(app).await;
        ws.send(json!({ "type": "connection_init", "payload": payload })).await;
        let reply = ws.recv(Duration::from_secs(5)).await.expect("an answer to connection_init");
        (ws, reply)
    }

    /// Connect as the holder of `token` and expect `connection_ack`.
    async fn open(app: &TestApp, token: &str) -> Self {
        let (ws, reply) = Self::init(app, json!({ "Authorization": format!("Bearer {token}") })).await;
        match reply {
            Received::Message(m) if m["type"] == "connection_ack" => ws,
            other => panic!("expected connection_ack, got {other:?}"),
        }
    }

    async fn send(&mut self, message: Value) {
        self.stream.send(Message::Text(message.to_string().into())).await.expect("send");
    }

    async fn subscribe(&mut self, id: &str, variables: Value) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": FEED, "variables": variables } })).await;
    }

    /// The next protocol message (WebSocket pings are answered by the library), or `None` after
    /// `wait`.
    async fn recv(&mut self, wait: Duration) -> Option<Received> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.stream.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Received::Closed(None)),
                Ok(Some(Err(_))) => return Some(Received::Closed(None)),
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Some(Received::Message(serde_json::from_str(text.as_str()).expect("JSON message")));
                }
                Ok(Some(Ok(Message::Close(frame)))) => return Some(Received::Closed(frame.map(|f| u16::from(f.code)))),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Every message that arrives within `wait` of the previous one.
    async fn drain(&mut self, wait: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(Received::Message(m)) = self.recv(wait).await {
            out.push(m);
        }
        out
    }
}

async fn create_service(app: &TestApp, code: &str) -> String {
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: CreateServiceInput!) { createService(input: $i) { id } }",
            json!({ "i": { "code": code, "name": code, "category": "REFERENCE" } }),
        )
        .await;
    resp.ok()["createService"]["id"].as_str().unwrap().to_owned()
}

/// Record a walk-in interaction; the comment tells events apart.
async fn record(app: &TestApp, service: &str, branch: &str, comment: &str) {
    let resp = app
        .client
        .query(
            Some(&app.staff_token()),
            "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { id } }",
            json!({ "i": { "serviceId": service, "patronType": "PUBLIC", "kind": "VISIT", "channel": "IN_PERSON",
                           "branch": branch, "comment": comment } }),
        )
        .await;
    resp.ok();
}

fn comment_of(message: &Value) -> Option<&str> {
    message["payload"]["data"]["interactionRecorded"]["comment"].as_str()
}

/// Record on `writer` until the subscription `id` on `ws` delivers one (a subscription is live
/// a moment after `subscribe` is sent; events before that are not for it). Then drain.
async fn until_live(ws: &mut Ws, writer: &TestApp, id: &str, service: &str, branch: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for attempt in 0.. {
        record(writer, service, branch, &format!("probe {attempt}")).await;
        if let Some(Received::Message(m)) = ws.recv(Duration::from_millis(300)).await {
            assert_eq!(m["type"], "next", "{m}");
            if m["id"] == id {
                ws.drain(Duration::from_millis(300)).await;
                return;
            }
        }
        assert!(Instant::now() < deadline, "the subscription never delivered an event");
    }
}

#[tokio::test]
async fn staff_receive_recorded_interactions_through_their_filters() {
    let app = spawn_app().await;
    let chat = create_service(&app, "CHAT").await;
    let loans = create_service(&app, "LOANS").await;
    let mut ws = Ws::open(&app, &app.staff_token()).await;
    ws.subscribe("chat", json!({ "s": chat })).await;
    ws.subscribe("main", json!({ "b": "Main" })).await;
    until_live(&mut ws, &app, "chat", &chat, "Main").await;
    until_live(&mut ws, &app, "main", &loans, "Main").await;

    record(&app, &loans, "East", "neither").await;
    record(&app, &chat, "East", "chat only").await;
    record(&app, &loans, "Main", "main only").await;
    record(&app, &chat, "Main", "both").await;
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.values().map(Vec::len).sum::<usize>() < 4 {
        assert!(Instant::now() < deadline, "missing events: {seen:?}");
        if let Some(Received::Message(m)) = ws.recv(Duration::from_millis(500)).await {
            assert_eq!(m["type"], "next", "{m}");
            assert!(m["payload"]["errors"].is_null(), "{m}");
            seen.entry(m["id"].as_str().unwrap().to_owned()).or_default().push(comment_of(&m).unwrap().to_owned());
        }
    }
    assert_eq!(seen["chat"], ["chat only", "both"]);
    assert_eq!(seen["main"], ["main only", "both"]);
    assert!(ws.drain(Duration::from_millis(300)).await.is_empty(), "an event slipped through a filter");

    // A bulk call announces every interaction it created (and nothing for repeats).
    let items: Vec<Value> = (0..3)
        .map(|i| {
            json!({ "serviceId": chat, "patronType": "PUBLIC", "kind": "LOAN", "channel": "WEB",
                    "comment": format!("bulk {i}"), "source": "ils", "externalId": format!("x-{i}") })
        })
        .collect();
    let bulk = "mutation($i: RecordInteractionsInput!) { recordInteractions(input: $i) { created } }";
    let resp = app.client.query(Some(&app.staff_token()), bulk, json!({ "i": { "interactions": items } })).await;
    assert_eq!(resp.ok()["recordInteractions"]["created"], 3);
    let mut bulk_seen = Vec::new();
    while bulk_seen.len() < 3 {
        match ws.recv(Duration::from_secs(5)).await {
            Some(Received::Message(m)) => bulk_seen.push(comment_of(&m).unwrap().to_owned()),
            other => panic!("expected the bulk events, got {other:?}"),
        }
    }
    assert_eq!(bulk_seen, ["bulk 0", "bulk 1", "bulk 2"]);
    let resp = app.client.query(Some(&app.staff_token()), bulk, json!({ "i": { "interactions": items } })).await;
    assert_eq!(resp.ok()["recordInteractions"]["created"], 0);
    assert!(ws.drain(Duration::from_millis(300)).await.is_empty(), "repeats were announced");

    // `complete` ends one subscription; the other goes on.
    ws.send(json!({ "id": "chat", "type": "complete" })).await;
    record(&app, &chat, "Main", "after complete").await;
    let rest = ws.drain(Duration::from_millis(500)).await;
    let ids: Vec<&str> = rest.iter().filter(|m| m["type"] == "next").filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, ["main"], "{rest:?}");
    let started = app.metric(r#"rapport_graphql_requests_total{operation="subscription",outcome="ok"}"#).await;
    assert!(started >= 2.0, "subscriptions counted: {started}");
}

#[tokio::test]
async fn connection_init_authenticates_and_subscribe_checks_roles() {
    let app = spawn_app().await;
    // A bad token closes the connection with 4403.
    for payload in [json!({ "Authorization": "Bearer not.a.token" }), json!({ "token": "garbage" })] {
        let (_, reply) = Ws::init(&app, payload).await;
        match reply {
            Received::Closed(code) => assert_eq!(code, Some(4403)),
            other => panic!("expected a 4403 close, got {other:?}"),
        }
    }
    // The `token` form works as well as `Authorization`.
    let (_, reply) = Ws::init(&app, json!({ "token": app.staff_token() })).await;
    assert!(matches!(reply, Received::Message(ref m) if m["type"] == "connection_ack"), "{reply:?}");

    let refused = |code: &'static str| {
        move |m: Value| {
            assert_eq!(m["type"], "next", "{m}");
            assert_eq!(m["payload"]["errors"][0]["extensions"]["code"], code, "{m}");
        }
    };
    // No token: an anonymous connection, whose subscriptions are refused.
    let (mut ws, reply) = Ws::init(&app, json!({})).await;
    assert!(matches!(reply, Received::Message(ref m) if m["type"] == "connection_ack"));
    ws.subscribe("1", json!({})).await;
    match ws.recv(Duration::from_secs(5)).await {
        Some(Received::Message(m)) => refused("UNAUTHENTICATED")(m),
        other => panic!("{other:?}"),
    }
    for token in [
        app.patron_token(uuid::Uuid::now_v7()),
        app.funder_token(uuid::Uuid::now_v7()),
        app.partner_token(&[Scope::PatronsRead]),
    ] {
        let mut ws = Ws::open(&app, &token).await;
        ws.subscribe("1", json!({})).await;
        match ws.recv(Duration::from_secs(5)).await {
            Some(Received::Message(m)) => refused("FORBIDDEN")(m),
            other => panic!("{other:?}"),
        }
    }
    // A bad argument is BAD_USER_INPUT.
    let mut ws = Ws::open(&app, &app.staff_token()).await;
    ws.subscribe("1", json!({ "s": "not-an-id" })).await;
    match ws.recv(Duration::from_secs(5)).await {
        Some(Received::Message(m)) => refused("BAD_USER_INPUT")(m),
        other => panic!("{other:?}"),
    }

    let refused = app.metric(r#"rapport_graphql_requests_total{operation="subscription",outcome="field_error"}"#).await;
    assert!(refused >= 5.0, "refused subscriptions counted: {refused}");

    // A partner with interactions:read gets the feed.
    let service = create_service(&app, "CHAT").await;
    let mut ws = Ws::open(&app, &app.partner_token(&[Scope::InteractionsRead])).await;
    ws.subscribe("p", json!({})).await;
    until_live(&mut ws, &app, "p", &service, "Main").await;
}

#[tokio::test]
async fn a_mutation_on_one_instance_reaches_a_subscriber_on_another() {
    let Some(redis) = SharedRedis::get("a_mutation_on_one_instance_reaches_a_subscriber_on_another").await else {
        return;
    };
    let options = TestOptions::default().with("REDIS_URL", &redis.url);
    let a = spawn_app_with(options.clone()).await;
    let b = spawn_on(Arc::clone(&a.database), options).await;
    let service = create_service(&a, "CHAT").await;
    let mut ws = Ws::open(&b, &b.staff_token()).await;
    ws.subscribe("feed", json!({ "s": service })).await;
    until_live(&mut ws, &a, "feed", &service, "Main").await;
    for i in 0..3 {
        record(&a, &service, "Main", &format!("from A {i}")).await;
        match ws.recv(Duration::from_secs(5)).await {
            Some(Received::Message(m)) => {
                assert_eq!(comment_of(&m), Some(format!("from A {i}").as_str()), "{m}");
                assert_eq!(m["payload"]["data"]["interactionRecorded"]["service"]["code"], "CHAT");
            }
            other => panic!("B did not receive A's interaction: {other:?}"),
        }
    }
    // Each instance delivers its own events once, not again through Redis.
    let mut local = Ws::open(&a, &a.staff_token()).await;
    local.subscribe("feed", json!({ "s": service })).await;
    until_live(&mut local, &a, "feed", &service, "Main").await;
    ws.drain(Duration::from_millis(300)).await;
    record(&a, &service, "Main", "once").await;
    let got = local.drain(Duration::from_millis(500)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(ws.drain(Duration::from_millis(500)).await.len(), 1);
}

#[tokio::test]
async fn subscribers_receive_events_again_after_redis_restarts() {
    let Some(mut redis) = RedisServer::start("subscribers_receive_events_again_after_redis_restarts").await else {
        return;
    };
    let options = TestOptions::default().with("REDIS_URL", &redis.url()).with("REDIS_BREAKER_COOLDOWN_MS", "200");
    let a = spawn_app_with(options.clone()).await;
    let b = spawn_on(Arc::clone(&a.database), options).await;
    let service = create_service(&a, "CHAT").await;
    let mut ws = Ws::open(&b, &b.staff_token()).await;
    ws.subscribe("feed", json!({ "s": service })).await;
    until_live(&mut ws, &a, "feed", &service, "Main").await;

    redis.kill().await;
    // Recording still works (events reach subscribers of A only while Redis is away).
    record(&a, &service, "Main", "while down").await;
    ws.drain(Duration::from_millis(300)).await;
    redis.restart().await;
    // B subscribes again on its own: poll until A's events reach it.
    until_live(&mut ws, &a, "feed", &service, "Main").await;
    assert!(b.metric(r#"rapport_events_total{event="redis_subscribed"}"#).await >= 2.0);
}
