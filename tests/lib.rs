//! The black-box harness shared by the test binary and the benchmark: start the real server
//! on a fresh database, talk to it over HTTP like a client.

pub mod client;
pub mod db;
pub mod server;

pub use client::{GqlResponse, TestClient};
pub use server::{TestApp, TestOptions, spawn_app, spawn_app_with};
