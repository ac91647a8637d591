//! Black-box tests: each starts the real server on a fresh database (SQLite, or PostgreSQL with
//! `TEST_DATABASE_URL`) and talks to it over HTTP like a client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod auth;
mod awareness;
mod cache;
mod campaigns;
mod consent;
mod engagement;
mod funders;
mod http_rules;
mod interactions;
mod jwt_attacks;
mod migrations;
mod node;
mod partners;
mod patrons;
mod persisted;
mod privacy;
mod ratelimit;
mod recommendations;
mod reports;
mod resilience;
mod roles;
mod schema;
mod seed;
mod segments;
mod statements;
mod stats;
mod subscriptions;
