//! Rapport: a GraphQL CRM backend for libraries, their patrons and their funders.

pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod seed;
pub mod startup;
pub mod state;
pub mod telemetry;
