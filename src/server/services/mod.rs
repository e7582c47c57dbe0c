//! The service layer: every rule (validation, tenancy, limits) lives here once, and REST,
//! server functions and MCP tools are thin adapters over it.

pub mod chat;
pub mod tasks;
pub mod users;
