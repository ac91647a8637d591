//! Who is asking: tokens, the viewer they become, and what each viewer may do.

pub mod jwt;
pub mod viewer;

pub use jwt::{Claims, JwtKeys, TokenRequest};
pub use viewer::{Capability, Principal, Role, Scope, Viewer};
