//! mcpgate: a policy gateway for the Model Context Protocol.
//!
//! The data path reads top to bottom: [`transport`] terminates MCP over HTTP, [`session`] maps
//! the gateway's sessions to the upstream's, [`policy`] decides, [`upstream`] forwards and relays.
//! [`audit`] records every decision.
//!
//! The simulated Binance MCP server that the `simulate` and `demo` commands, the tests and the
//! benchmarks run against is a crate of its own, `binance-sim` (`crates/binance-sim`).

pub mod admin;
pub mod admission;
pub mod approval;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod gateway;
pub mod json;
pub mod policy;
pub mod reload;
pub mod server;
pub mod session;
pub mod transport;
pub mod upstream;
