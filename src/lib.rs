//! mcpgate: a policy gateway for the Model Context Protocol.
//!
//! The data path reads top to bottom: [`transport`] terminates MCP over HTTP and renders what
//! [`exchange`] made of each message; the exchange asks [`gateway`] for a verdict (the [`policy`]
//! engine and the rate limiter) and forwards through [`upstream`]. [`protocol`] holds MCP's words
//! for all of them; [`session`], [`approval`] and [`audit`] keep what outlives one message.
//!
//! The simulated Binance MCP server that the `simulate` and `demo` commands, the tests and the
//! benchmarks run against is a crate of its own, `binance-sim` (`crates/binance-sim`).

// A request's future is moved whole several times per call (into hyper's dispatcher, into the
// audit barrier's): at 22 KB those copies cost a fifth of a call's instructions. Rare paths are
// boxed to keep it small; clippy.toml sets the size this lint holds it under.
#![warn(clippy::large_futures)]

pub mod admin;
pub mod admission;
pub mod approval;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod exchange;
pub mod gateway;
pub mod json;
pub mod metrics;
pub mod oauth;
pub mod policy;
pub mod protocol;
pub mod reload;
pub mod server;
pub mod session;
pub mod session_token;
pub mod state;
pub mod transport;
pub mod upstream;
