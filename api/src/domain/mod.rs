//! Domain logic: validation, queries and rules, free of GraphQL and HTTP.

pub mod accounts;
pub mod aggregate;
pub mod audit;
pub mod awareness;
pub mod campaigns;
pub mod consent;
pub mod engagement;
pub mod feedback;
pub mod funders;
pub mod interactions;
pub mod money;
pub mod pagination;
pub mod partners;
pub mod patrons;
pub mod privacy;
pub mod recommendations;
pub mod reports;
pub mod rollups;
pub mod search;
pub mod segments;
pub mod services;
pub mod sessions;
pub mod stats;
pub mod validation;
