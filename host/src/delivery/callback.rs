//! The default sink: an HTTP POST of one event to the route's callback URL, signed with
//! Standard Webhooks headers, `?stgid=<device>` added, no redirects followed.
use std::time::{Duration, Instant};

use reqwest::Url;

use super::cams_format::{CallbackDevice, callback_body};
use super::retry::parse_retry_after;
use super::route::CallbackFormat;
use super::signature::WebhookSigner;
use crate::crypto::BodyCipher;
use crate::plugin::bindings::types::Event;

/// Longest piece of a response body kept in the attempt log.
const RESPONSE_START: usize = 256;

/// What one POST came to.
#[derive(Debug, Clone, PartialEq)]
pub enum PostOutcome {
    /// 2xx.
    Delivered,
    /// 410 Gone: the receiver wants no more; the route is disabled.
    Gone,
    /// The receiver asked to stop retrying this message (`webhook-delivery: abort-message`).
    Abort,
    /// Try again (timeout, connection error, 429, 5xx, any other status).
    Retry { retry_after: Option<Duration> },
    /// The event has no body in this route's format; nothing to send.
    Skipped,
}

/// The record of one POST, for the attempt log.
#[derive(Debug, Clone)]
pub struct PostReport {
    pub outcome: PostOutcome,
    pub status: Option<u16>,
    pub duration: Duration,
    pub response: String,
}

/// One route's callback target.
pub struct CallbackSink {
    client: reqwest::Client,
    url: Url,
    format: CallbackFormat,
    signer: WebhookSigner,
}

impl CallbackSink {
    /// A sink posting to `url` (already checked by the URL guard).
    pub fn new(client: reqwest::Client, url: Url, format: CallbackFormat, signer: WebhookSigner) -> Self {
        CallbackSink { client, url, format, signer }
    }

    /// Posts one event. `cipher` encrypts the body for devices in encrypted mode.
    pub async fn post(&self, event: &Event, device: &CallbackDevice, cipher: Option<&BodyCipher>) -> PostReport {
        let now = chrono::Utc::now().timestamp();
        let Some(body) = callback_body(self.format, event, device, now) else {
            return PostReport {
                outcome: PostOutcome::Skipped,
                status: None,
                duration: Duration::ZERO,
                response: String::new(),
            };
        };
        let body = match cipher.map(|c| c.encrypt(&body)) {
            Some(Ok(text)) => text.into_bytes(),
            Some(Err(error)) => {
                let response = format!("the body could not be encrypted: {error}");
                return PostReport { outcome: PostOutcome::Abort, status: None, duration: Duration::ZERO, response };
            }
            None => body,
        };
        let mut url = self.url.clone();
        url.query_pairs_mut().append_pair("stgid", &event.device_id);
        let mut request = self.client.post(url).header("content-type", "application/json");
        for (name, value) in self.signer.headers(&event.id, now, &body) {
            request = request.header(name, value);
        }
        let started = Instant::now();
        match request.body(body).send().await {
            Ok(response) => {
                let status = response.status();
                let abort = response
                    .headers()
                    .get("webhook-delivery")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"abort-message"));
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let text = response.bytes().await.map(|b| start_of(&b)).unwrap_or_default();
                let outcome = if status.is_success() {
                    PostOutcome::Delivered
                } else if status.as_u16() == 410 {
                    PostOutcome::Gone
                } else if abort {
                    PostOutcome::Abort
                } else {
                    PostOutcome::Retry { retry_after }
                };
                PostReport { outcome, status: Some(status.as_u16()), duration: started.elapsed(), response: text }
            }
            Err(error) => PostReport {
                outcome: PostOutcome::Retry { retry_after: None },
                status: None,
                duration: started.elapsed(),
                response: describe(&error),
            },
        }
    }
}

fn start_of(body: &[u8]) -> String {
    let cut = &body[..body.len().min(RESPONSE_START)];
    String::from_utf8_lossy(cut).into_owned()
}

fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text.truncate(RESPONSE_START);
    text
}
