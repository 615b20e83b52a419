//! Integration tests of the service kit: a small service assembled with
//! [`ServiceBuilder`] on the real broker and PostgreSQL (and on SQLite, the
//! embedded default), exercised over HTTP.

mod helpers;
mod http_api;
mod jwt;
mod migrations;
mod server;
