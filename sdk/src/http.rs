//! Outbound HTTP for delivery plugins.
//!
//! The gateway performs the request itself, under the plugin's allowlist of hosts
//! (`allowed_hosts` in the operator's config), its time limit and its size limits; the
//! plugin never holds a socket. Redirects are not followed.
//!
//! ```
//! use biogate_sdk::http::{self, Request};
//! # biogate_sdk::testing::set_http_handler(|_| Ok(http::Response { status: 204, headers: vec![], body: vec![] }));
//!
//! let request = Request::new("POST", "https://hr.example.com/punches")
//!     .with_header("content-type", "application/json")
//!     .with_body(br#"{"user":"42"}"#.to_vec())
//!     .with_timeout_ms(5_000);
//! let response = http::send(&request)?;
//! assert!(response.is_success());
//! # Ok::<(), http::HttpError>(())
//! ```

pub use crate::bindings::biogate::plugin::outbound_http::{HttpError, Request, Response};

/// Sends `request` through the gateway and waits for the answer.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    crate::backend::http_send(request)
}

impl Request {
    /// A request with no headers, an empty body and the plugin's default time limit.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self { method: method.into(), url: url.into(), headers: Vec::new(), body: Vec::new(), timeout_ms: None }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Asks for a shorter time limit than the plugin's maximum.
    pub fn with_timeout_ms(mut self, timeout_ms: u32) -> Self {
        self.timeout_ms = Some(timeout_ms);
        self
    }
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn requests_go_to_the_test_handler() {
        assert!(matches!(send(&Request::new("GET", "https://a.example")), Err(HttpError::Denied(_))));
        testing::set_http_handler(|req| {
            Ok(Response {
                status: if req.method == "POST" { 201 } else { 404 },
                headers: vec![("Retry-After".into(), "5".into())],
                body: Vec::new(),
            })
        });
        let response = send(&Request::new("POST", "https://a.example").with_body("x")).unwrap();
        assert!(response.is_success());
        assert_eq!(response.header("retry-after"), Some("5"));
        assert_eq!(testing::http_requests().len(), 2);
        assert_eq!(testing::http_requests()[1].body, b"x");
    }
}
