//! Domain logic: validation, queries and rules, free of GraphQL and HTTP.

pub mod funders;
pub mod interactions;
pub mod money;
pub mod pagination;
pub mod search;
pub mod patrons;
pub mod services;
pub mod validation;
