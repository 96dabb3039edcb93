//! The callback sink (`type = "callback"`), the default: an HTTP POST of one event to the
//! route's callback URL in the Cams v3, flat or legacy v2 (form-encoded) form, signed with
//! Standard Webhooks headers (over the bytes sent),
//! `?stgid=<device>` added, no redirects followed. Its settings, their checks and the
//! sink's construction live here too.
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use reqwest::Url;
use serde::Deserialize;

use super::{PostOutcome, PostReport, SinkContext};
use crate::cams::{CallbackDevice, CallbackFormat, callback_body};
use crate::crypto::BodyCipher;
use crate::delivery::retry::parse_retry_after;
use crate::delivery::signature::{WebhookSecret, WebhookSigner};
use crate::field::SettingError;
use crate::outbound::{UrlGuard, guarded_client};
use crate::plugin::bindings::types::Event;

/// `sink = { type = "callback", url = "...", format = "cams-v3", secret = "whsec_..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackSinkConfig {
    /// The receiver's URL (`?stgid=<device>` is added to it).
    pub url: String,
    /// Body format.
    #[serde(default)]
    pub format: CallbackFormat,
    /// Standard Webhooks signing secret (`whsec_...`); generated and kept in the store
    /// when absent.
    #[serde(default)]
    pub secret: Option<String>,
}

impl CallbackSinkConfig {
    /// Checks the URL (absolute, http or https) and the secret's form. Keys are relative
    /// to the sink's table.
    pub fn validate(&self) -> Result<(), SettingError> {
        let parsed = Url::parse(&self.url).map_err(|e| {
            SettingError::new(
                "url",
                format!("{:?} is not a URL ({e})", self.url),
                "write an absolute http:// or https:// URL",
            )
        })?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(SettingError::new(
                "url",
                format!("scheme {:?} is not http or https", parsed.scheme()),
                "use an http:// or https:// URL",
            ));
        }
        if let Some(secret) = &self.secret
            && !secret.starts_with("whsec_")
        {
            return Err(SettingError::new(
                "secret",
                "a signing secret starts with `whsec_`",
                "use a Standard Webhooks secret (whsec_ + base64), or remove the key to generate one",
            ));
        }
        Ok(())
    }

    /// The sink of route `route`: its signing secret (configured, kept, or generated and
    /// kept), the URL checked by the guard, a client with the route's timeout.
    pub fn build(&self, route: &str, ctx: &SinkContext<'_>) -> anyhow::Result<CallbackSink> {
        let secret = match &self.secret {
            Some(text) => WebhookSecret::parse(text).map_err(|e| anyhow!("routes.{route}.sink.secret: {e}"))?,
            None => match ctx.delivery_log.route_secret(route)? {
                Some(text) => {
                    WebhookSecret::parse(&text).map_err(|e| anyhow!("the kept secret of route {route}: {e}"))?
                }
                None => {
                    let fresh = WebhookSecret::generate();
                    ctx.delivery_log.set_route_secret(route, &fresh.expose())?;
                    fresh
                }
            },
        };
        let url = Url::parse(&self.url).with_context(|| format!("routes.{route}.sink.url"))?;
        let guard = UrlGuard::new(vec![], ctx.allow_private_networks);
        guard.check(&url).map_err(|e| anyhow!("routes.{route}.sink.url: {e}"))?;
        let client = guarded_client(ctx.allow_private_networks, ctx.timeout)?;
        Ok(CallbackSink::new(client, url, self.format, WebhookSigner::single(secret)))
    }
}

/// Longest piece of a response body kept in the attempt log.
const RESPONSE_START: usize = 256;

/// One route's callback target.
pub struct CallbackSink {
    client: reqwest::Client,
    url: Url,
    format: CallbackFormat,
    signer: WebhookSigner,
}

impl CallbackSink {
    /// The body format.
    pub fn format(&self) -> CallbackFormat {
        self.format
    }

    /// The route's signing secret (`whsec_...`), shown to the operator.
    pub fn secret(&self) -> String {
        self.signer.primary_secret()
    }

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
        self.send(&event.id, &event.device_id, body, self.format, cipher, now).await
    }

    /// Posts a JSON body of its own (a `Resend.PunchLog` batch) as `webhook-id` `id`, for
    /// `device_id`, signed and encrypted like an event's.
    pub async fn post_json(&self, id: &str, device_id: &str, body: Vec<u8>, cipher: Option<&BodyCipher>) -> PostReport {
        let now = chrono::Utc::now().timestamp();
        self.send(id, device_id, body, CallbackFormat::CamsV3, cipher, now).await
    }

    async fn send(
        &self,
        id: &str,
        device_id: &str,
        body: Vec<u8>,
        format: CallbackFormat,
        cipher: Option<&BodyCipher>,
        now: i64,
    ) -> PostReport {
        let body = match cipher.map(|c| c.encrypt(&body)) {
            Some(Ok(text)) => text.into_bytes(),
            Some(Err(error)) => {
                let response = format!("the body could not be encrypted: {error}");
                return PostReport { outcome: PostOutcome::Abort, status: None, duration: Duration::ZERO, response };
            }
            None => body,
        };
        let body = format.wire_body(body);
        let mut url = self.url.clone();
        url.query_pairs_mut().append_pair("stgid", device_id);
        let mut request = self.client.post(url).header("content-type", format.content_type());
        for (name, value) in self.signer.headers(id, now, &body) {
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
