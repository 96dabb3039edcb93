//! Outbound HTTP for delivery plugins, executed by the host under the plugin's allowlist,
//! time limit and response size limit.
use std::time::Duration;

use reqwest::{Method, Url};

use super::bindings::delivery::biogate::plugin::outbound_http::{HttpError, Request, Response};
use crate::outbound::UrlGuard;

/// A delivery plugin's HTTP capability.
#[derive(Clone)]
pub struct OutboundHttp {
    client: reqwest::Client,
    guard: UrlGuard,
    max_timeout: Duration,
    max_response_bytes: usize,
    runtime: tokio::runtime::Handle,
}

impl OutboundHttp {
    /// A capability that calls only what `guard` allows.
    pub fn new(
        client: reqwest::Client,
        guard: UrlGuard,
        max_timeout: Duration,
        max_response_bytes: usize,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        OutboundHttp { client, guard, max_timeout, max_response_bytes, runtime }
    }

    /// Sends the request and waits for the answer. Must not be called on a thread that
    /// drives the async runtime (plugin calls run on blocking threads).
    pub fn send_blocking(&self, request: Request) -> Result<Response, HttpError> {
        let url = Url::parse(&request.url).map_err(|e| HttpError::InvalidRequest(format!("url: {e}")))?;
        self.guard.check(&url).map_err(|e| HttpError::Denied(e.to_string()))?;
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("method {:?}", request.method)))?;
        let timeout = request
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.into()))
            .unwrap_or(self.max_timeout)
            .min(self.max_timeout);
        let mut builder = self.client.request(method, url).timeout(timeout).body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let limit = self.max_response_bytes;
        self.runtime.block_on(async move {
            let mut response = builder.send().await.map_err(classify)?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(classify)? {
                let room = limit.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room <= chunk.len() {
                    break;
                }
            }
            Ok(Response { status, headers, body })
        })
    }
}

fn classify(error: reqwest::Error) -> HttpError {
    if error.is_timeout() {
        HttpError::Timeout
    } else if error.is_builder() || error.is_request() && !error.is_connect() {
        HttpError::InvalidRequest(error.to_string())
    } else {
        HttpError::Connection(error.to_string())
    }
}
