//! The black-box harness shared by the test binary and the benchmark: start the real server
//! on a fresh database, talk to it over HTTP like a client.
// The harness is test code: a failed set-up should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod client;
pub mod db;
pub mod redis_server;
pub mod server;
pub mod storm;

pub use client::{GqlResponse, TestClient};
pub use server::{TestApp, TestOptions, spawn_app, spawn_app_with};
