//! The roles matrix of DESIGN.md: every role against every root field.

use rapport::auth::Scope;
use rapport::graphql::ids::decode_global_id;
use rapport_tests::{TestApp, spawn_app};
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Patron,
    Staff,
    Admin,
    Funder,
    PartnerNoScope,
    PartnerAll,
}

const EVERYONE: [Who; 7] =
    [Who::Anonymous, Who::Patron, Who::Staff, Who::Admin, Who::Funder, Who::PartnerNoScope, Who::PartnerAll];

/// What a role gets: data, or an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Unauthenticated,
    Forbidden,
}
use Outcome::{Forbidden as F, Ok as O, Unauthenticated as U};

struct World {
    app: TestApp,
    patron_id: Uuid,
    patron_gid: String,
    other_patron_gid: String,
    service_gid: String,
    interaction_gid: String,
    funder_id: Uuid,
    funder_gid: String,
    funding_gid: String,
}

fn uuid_of(gid: &str) -> Uuid {
    decode_global_id(&async_graphql::ID(gid.to_owned())).expect("global id").1
}

async fn world() -> World {
    let app = spawn_app().await;
    let staff = app.staff_token();
    let q = |query: &'static str, vars: Value| {
        let app = &app;
        let staff = staff.clone();
        async move { app.client.query(Some(&staff), query, vars).await.ok().clone() }
    };
    let service = q(
        "mutation($i: CreateServiceInput!) { createService(input: $i) { id } }",
        json!({ "i": { "code": "CHAT", "name": "Chat reference", "category": "REFERENCE", "channels": ["CHAT"] } }),
    )
    .await;
    let service_gid = service["createService"]["id"].as_str().unwrap().to_owned();
    let patron = q(
        "mutation($i: CreatePatronInput!) { createPatron(input: $i) { id } }",
        json!({ "i": { "cardNumber": "P-0001", "name": "Ada Lovelace", "patronType": "ONLINE_LEARNER" } }),
    )
    .await;
    let patron_gid = patron["createPatron"]["id"].as_str().unwrap().to_owned();
    let other = q(
        "mutation($i: CreatePatronInput!) { createPatron(input: $i) { id } }",
        json!({ "i": { "cardNumber": "P-0002", "name": "Grace Hopper", "patronType": "FACULTY" } }),
    )
    .await;
    let other_patron_gid = other["createPatron"]["id"].as_str().unwrap().to_owned();
    let interaction = q(
        "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { id } }",
        json!({ "i": { "patronId": patron_gid, "serviceId": service_gid, "kind": "REFERENCE_QUESTION",
                       "channel": "CHAT", "occurredAt": "2026-01-15T10:00:00Z" } }),
    )
    .await;
    let interaction_gid = interaction["recordInteraction"]["id"].as_str().unwrap().to_owned();
    let funder = q(
        "mutation($i: CreateFunderInput!) { createFunder(input: $i) { id } }",
        json!({ "i": { "name": "State Library Fund", "kind": "GOVERNMENT" } }),
    )
    .await;
    let funder_gid = funder["createFunder"]["id"].as_str().unwrap().to_owned();
    let funding = q(
        "mutation($i: CreateFundingInput!) { createFunding(input: $i) { id } }",
        json!({ "i": { "funderId": funder_gid, "serviceId": service_gid, "amount": "12000.00", "currency": "USD",
                       "startsOn": "2026-01-01", "endsOn": "2026-12-31" } }),
    )
    .await;
    let funding_gid = funding["createFunding"]["id"].as_str().unwrap().to_owned();
    World {
        patron_id: uuid_of(&patron_gid),
        funder_id: uuid_of(&funder_gid),
        app,
        patron_gid,
        other_patron_gid,
        service_gid,
        interaction_gid,
        funder_gid,
        funding_gid,
    }
}

impl World {
    fn token(&self, who: Who) -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::Patron => Some(self.app.patron_token(self.patron_id)),
            Who::Staff => Some(self.app.staff_token()),
            Who::Admin => Some(self.app.admin_token()),
            Who::Funder => Some(self.app.funder_token(self.funder_id)),
            Who::PartnerNoScope => Some(self.app.partner_token(&[])),
            Who::PartnerAll => Some(self.app.partner_token(&Scope::ALL)),
        }
    }

    async fn check(&self, name: &str, query: &str, vars: Value, expected: [Outcome; 7]) {
        for (who, want) in EVERYONE.into_iter().zip(expected) {
            let resp = self.app.client.query(self.token(who).as_deref(), query, vars.clone()).await;
            let got = match resp.error_code().as_deref() {
                None => O,
                Some("UNAUTHENTICATED") => U,
                Some("FORBIDDEN") => F,
                Some(other) => panic!("{name} as {who:?}: unexpected {other}: {}", resp.body),
            };
            assert_eq!(got, want, "{name} as {who:?}: {}", resp.body);
        }
    }
}

/// A mutation, a maker of fresh variables for each call, and what each role gets.
type MutationCheck = (&'static str, String, Box<dyn Fn() -> Value>, [Outcome; 7]);

/// Unique inputs per call so every allowed write succeeds.
fn n() -> String {
    Uuid::new_v4().simple().to_string()[..8].to_uppercase()
}

#[tokio::test]
async fn every_role_against_every_root_query() {
    let w = world().await;
    //                                          anon patron staff admin funder p-none p-all
    w.check("services", "{ services { totalCount } }", json!({}), [O, O, O, O, O, O, O]).await;
    w.check(
        "service",
        "query($id: ID!) { service(id: $id) { code } }",
        json!({ "id": w.service_gid }),
        [O, O, O, O, O, O, O],
    )
    .await;
    w.check("patrons", "{ patrons { totalCount } }", json!({}), [U, F, O, O, F, F, O]).await;
    w.check(
        "patron(self)",
        "query($id: ID!) { patron(id: $id) { name } }",
        json!({ "id": w.patron_gid }),
        [U, O, O, O, F, F, O],
    )
    .await;
    w.check(
        "patron(other)",
        "query($id: ID!) { patron(id: $id) { name } }",
        json!({ "id": w.other_patron_gid }),
        [U, F, O, O, F, F, O],
    )
    .await;
    w.check("me", "{ me { name } }", json!({}), [U, O, F, F, F, F, F]).await;
    w.check("interactions", "{ interactions { totalCount } }", json!({}), [U, O, O, O, F, F, O]).await;
    w.check(
        "interaction",
        "query($id: ID!) { interaction(id: $id) { kind } }",
        json!({ "id": w.interaction_gid }),
        [U, O, O, O, F, F, O],
    )
    .await;
    w.check("staffNotes", "{ interactions { edges { node { staffNotes } } } }", json!({}), [U, F, O, O, F, F, F]).await;
    w.check("funders", "{ funders { totalCount } }", json!({}), [U, F, O, O, O, F, F]).await;
    w.check(
        "funder",
        "query($id: ID!) { funder(id: $id) { name } }",
        json!({ "id": w.funder_gid }),
        [U, F, O, O, O, F, F],
    )
    .await;
    w.check(
        "node(service)",
        "query($id: ID!) { node(id: $id) { id } }",
        json!({ "id": w.service_gid }),
        [O, O, O, O, O, O, O],
    )
    .await;
    w.check(
        "node(patron)",
        "query($id: ID!) { node(id: $id) { id } }",
        json!({ "id": w.patron_gid }),
        [U, O, O, O, F, F, O],
    )
    .await;
    w.check(
        "node(funding)",
        "query($id: ID!) { node(id: $id) { id } }",
        json!({ "id": w.funding_gid }),
        [U, F, O, O, O, F, F],
    )
    .await;
    w.check("myRecommendations", "{ myRecommendations { kind } }", json!({}), [U, O, F, F, F, F, F]).await;
    w.check(
        "patron(self).recommendations",
        "query($id: ID!) { patron(id: $id) { recommendations { kind } } }",
        json!({ "id": w.patron_gid }),
        [U, O, O, O, F, F, F],
    )
    .await;
    w.check(
        "patron(other).recommendations",
        "query($id: ID!) { patron(id: $id) { recommendations { kind } } }",
        json!({ "id": w.other_patron_gid }),
        [U, F, O, O, F, F, F],
    )
    .await;
    w.check("awarenessGaps", "{ awarenessGaps(patronType: PUBLIC) { index } }", json!({}), [U, F, O, O, F, F, O]).await;
}

#[tokio::test]
async fn every_role_against_every_mutation() {
    let w = world().await;
    let everyone = EVERYONE.len();
    let mut checks: Vec<MutationCheck> = Vec::new();
    let service_gid = w.service_gid.clone();
    let patron_gid = w.patron_gid.clone();
    let funder_gid = w.funder_gid.clone();
    let funding_gid = w.funding_gid.clone();
    checks.push((
        "createService",
        "mutation($i: CreateServiceInput!) { createService(input: $i) { id } }".into(),
        Box::new(|| json!({ "i": { "code": format!("S{}", n()), "name": "New", "category": "OTHER" } })),
        [U, F, O, O, F, F, O],
    ));
    let s = service_gid.clone();
    checks.push((
        "updateService",
        "mutation($i: UpdateServiceInput!) { updateService(input: $i) { id } }".into(),
        Box::new(move || json!({ "i": { "id": s, "description": n() } })),
        [U, F, O, O, F, F, O],
    ));
    checks.push((
        "createPatron",
        "mutation($i: CreatePatronInput!) { createPatron(input: $i) { id } }".into(),
        Box::new(
            || json!({ "i": { "cardNumber": format!("C-{}", n()), "name": "New Patron", "patronType": "PUBLIC" } }),
        ),
        [U, F, O, O, F, F, O],
    ));
    let p = patron_gid.clone();
    checks.push((
        "updatePatron",
        "mutation($i: UpdatePatronInput!) { updatePatron(input: $i) { id } }".into(),
        Box::new(move || json!({ "i": { "id": p, "homeBranch": n() } })),
        [U, F, O, O, F, F, O],
    ));
    let (p, s) = (patron_gid.clone(), service_gid.clone());
    checks.push((
        "recordInteraction",
        "mutation($i: RecordInteractionInput!) { recordInteraction(input: $i) { id } }".into(),
        Box::new(move || {
            json!({ "i": { "patronId": p, "serviceId": s, "kind": "VISIT", "channel": "IN_PERSON",
                           "occurredAt": "2026-02-01T09:00:00Z" } })
        }),
        [U, F, O, O, F, F, O],
    ));
    let (p, s) = (patron_gid.clone(), service_gid.clone());
    checks.push((
        "recordInteractions",
        "mutation($i: RecordInteractionsInput!) { recordInteractions(input: $i) { created } }".into(),
        Box::new(move || {
            json!({ "i": { "interactions": [{ "patronId": p, "serviceId": s, "kind": "LOAN", "channel": "IN_PERSON",
                           "occurredAt": "2026-02-02T09:00:00Z", "source": "ils", "externalId": n() }] } })
        }),
        [U, F, O, O, F, F, O],
    ));
    checks.push((
        "createFunder",
        "mutation($i: CreateFunderInput!) { createFunder(input: $i) { id } }".into(),
        Box::new(|| json!({ "i": { "name": format!("Fund {}", n()), "kind": "FOUNDATION" } })),
        [U, F, O, O, F, F, F],
    ));
    let f = funder_gid.clone();
    checks.push((
        "updateFunder",
        "mutation($i: UpdateFunderInput!) { updateFunder(input: $i) { id } }".into(),
        Box::new(move || json!({ "i": { "id": f, "notes": n() } })),
        [U, F, O, O, F, F, F],
    ));
    let (f, s) = (funder_gid.clone(), service_gid.clone());
    checks.push((
        "createFunding",
        "mutation($i: CreateFundingInput!) { createFunding(input: $i) { id } }".into(),
        Box::new(move || {
            json!({ "i": { "funderId": f, "serviceId": s, "amount": "10.00", "currency": "EUR",
                           "startsOn": "2026-01-01", "endsOn": "2026-06-30" } })
        }),
        [U, F, O, O, F, F, F],
    ));
    let g = funding_gid.clone();
    checks.push((
        "updateFunding",
        "mutation($i: UpdateFundingInput!) { updateFunding(input: $i) { id } }".into(),
        Box::new(move || json!({ "i": { "id": g, "name": n() } })),
        [U, F, O, O, F, F, F],
    ));
    for (name, query, vars, expected) in checks {
        assert_eq!(expected.len(), everyone);
        for (who, want) in EVERYONE.into_iter().zip(expected) {
            let resp = w.app.client.query(w.token(who).as_deref(), &query, vars()).await;
            let got = match resp.error_code().as_deref() {
                None => O,
                Some("UNAUTHENTICATED") => U,
                Some("FORBIDDEN") => F,
                Some(other) => panic!("{name} as {who:?}: unexpected {other}: {}", resp.body),
            };
            assert_eq!(got, want, "{name} as {who:?}: {}", resp.body);
        }
    }
}

/// Segments and campaigns: staff, admins and `campaigns:*` partners; a patron only their own inbox.
#[tokio::test]
async fn every_role_against_segments_and_campaigns() {
    let w = world().await;
    let staff = w.app.staff_token();
    let ok = |resp: rapport_tests::GqlResponse| resp.ok().clone();
    // The world's patron (an online learner) takes in-app messages.
    ok(w.app
        .client
        .query(
            Some(&staff),
            "mutation($i: UpdatePatronInput!) { updatePatron(input: $i) { id } }",
            json!({ "i": { "id": w.patron_gid, "consents": [{ "purpose": "MARKETING_IN_APP", "granted": true }] } }),
        )
        .await);
    let segment = ok(w
        .app
        .client
        .query(
            Some(&staff),
            "mutation($i: CreateSegmentInput!) { createSegment(input: $i) { id } }",
            json!({ "i": { "name": "Online learners", "rule": { "patronTypes": ["ONLINE_LEARNER"] } } }),
        )
        .await)["createSegment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let create_campaign = |channel: &'static str| {
        let (app, staff, segment, service) = (&w.app, staff.clone(), segment.clone(), w.service_gid.clone());
        async move {
            let resp = app
                .client
                .query(
                    Some(&staff),
                    "mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }",
                    json!({ "i": { "name": "Try chat", "segmentId": segment, "promotedServiceId": service,
                                   "channel": channel, "message": "Ask us anything", "holdoutPercent": 0 } }),
                )
                .await;
            resp.ok()["createCampaign"]["id"].as_str().unwrap().to_owned()
        }
    };
    let in_app = create_campaign("IN_APP").await;
    let launch = "mutation($id: ID!) { launchCampaign(id: $id) { id } }";
    ok(w.app.client.query(Some(&staff), launch, json!({ "id": in_app })).await);
    let email = create_campaign("EMAIL").await;
    ok(w.app.client.query(Some(&staff), launch, json!({ "id": email })).await);
    let patron = w.app.patron_token(w.patron_id);
    let inbox = ok(w.app.client.query(Some(&patron), "{ myInbox { edges { node { id } } } }", json!({})).await);
    let delivery = inbox["myInbox"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();
    let mut drafts = Vec::new();
    for _ in 0..EVERYONE.len() {
        drafts.push(create_campaign("SMS").await);
    }

    //                                                       anon patron staff admin funder p-none p-all
    w.check("segments", "{ segments { totalCount } }", json!({}), [U, F, O, O, F, F, O]).await;
    let q = "query($id: ID!) { segment(id: $id) { name size members { totalCount } } }";
    w.check("segment", q, json!({ "id": segment }), [U, F, O, O, F, F, O]).await;
    let q = "query($id: ID!) { node(id: $id) { id } }";
    w.check("node(segment)", q, json!({ "id": segment }), [U, F, O, O, F, F, O]).await;
    w.check(
        "campaigns",
        "{ campaigns { totalCount edges { node { stats { lift } } } } }",
        json!({}),
        [U, F, O, O, F, F, O],
    )
    .await;
    let q = "query($id: ID!) { campaign(id: $id) { name segment { name } stats { deliveries } } }";
    w.check("campaign", q, json!({ "id": in_app }), [U, F, O, O, F, F, O]).await;
    w.check(
        "node(campaign)",
        "query($id: ID!) { node(id: $id) { id } }",
        json!({ "id": in_app }),
        [U, F, O, O, F, F, O],
    )
    .await;
    w.check(
        "node(delivery)",
        "query($id: ID!) { node(id: $id) { id } }",
        json!({ "id": delivery }),
        [U, O, O, O, F, F, O],
    )
    .await;
    w.check("myInbox", "{ myInbox { edges { node { message read } } } }", json!({}), [U, O, F, F, F, F, F]).await;
    let q = "{ pendingDeliveries(channel: EMAIL) { edges { node { address message } } } }";
    w.check("pendingDeliveries", q, json!({}), [U, F, O, O, F, F, O]).await;

    let mut checks: Vec<MutationCheck> = Vec::new();
    checks.push((
        "createSegment",
        "mutation($i: CreateSegmentInput!) { createSegment(input: $i) { id } }".into(),
        Box::new(|| json!({ "i": { "name": format!("Segment {}", n()), "rule": { "tags": ["x"] } } })),
        [U, F, O, O, F, F, O],
    ));
    let s = segment.clone();
    checks.push((
        "updateSegment",
        "mutation($id: ID!, $i: UpdateSegmentInput!) { updateSegment(id: $id, input: $i) { id } }".into(),
        Box::new(move || json!({ "id": s, "i": { "name": n() } })),
        [U, F, O, O, F, F, O],
    ));
    let (s, svc) = (segment.clone(), w.service_gid.clone());
    checks.push((
        "createCampaign",
        "mutation($i: CreateCampaignInput!) { createCampaign(input: $i) { id } }".into(),
        Box::new(move || {
            json!({ "i": { "name": n(), "segmentId": s, "promotedServiceId": svc, "channel": "PUSH", "message": "Hi" } })
        }),
        [U, F, O, O, F, F, O],
    ));
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    checks.push((
        "launchCampaign",
        launch.into(),
        Box::new(move || {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            json!({ "id": drafts[i % drafts.len()] })
        }),
        [U, F, O, O, F, F, O],
    ));
    let d = delivery.clone();
    checks.push((
        "markDelivered",
        "mutation($ids: [ID!]!) { markDelivered(ids: $ids) { updated } }".into(),
        Box::new(move || json!({ "ids": [d] })),
        [U, F, O, O, F, F, O],
    ));
    let d = delivery.clone();
    checks.push((
        "markOpened",
        "mutation($ids: [ID!]!) { markOpened(ids: $ids) { updated } }".into(),
        Box::new(move || json!({ "ids": [d] })),
        [U, F, O, O, F, F, O],
    ));
    let d = delivery.clone();
    checks.push((
        "markInboxRead",
        "mutation($id: ID!) { markInboxRead(deliveryId: $id) { read } }".into(),
        Box::new(move || json!({ "id": d })),
        [U, O, F, F, F, F, F],
    ));
    for (name, query, vars, expected) in checks {
        for (who, want) in EVERYONE.into_iter().zip(expected) {
            let resp = w.app.client.query(w.token(who).as_deref(), &query, vars()).await;
            let got = match resp.error_code().as_deref() {
                None => O,
                Some("UNAUTHENTICATED") => U,
                Some("FORBIDDEN") => F,
                Some(other) => panic!("{name} as {who:?}: unexpected {other}: {}", resp.body),
            };
            assert_eq!(got, want, "{name} as {who:?}: {}", resp.body);
        }
    }
}
