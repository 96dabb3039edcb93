//! `relay`: the smallest delivery plugin that makes HTTP requests, for the gateway's own
//! tests (a delivery plugin's `allowed_hosts`, `biogate check`). It POSTs the ids of a
//! batch's events, one per line, to the `url` of its config. Not meant for production.

use biogate_sdk::prelude::*;

/// The delivery plugin.
pub struct Relay;

impl Delivery for Relay {
    fn deliver(batch: Vec<Event>) -> Result<(), DeliveryError> {
        let url: String = config::require("url")?;
        let ids: Vec<&str> = batch.iter().map(|e| e.id.as_str()).collect();
        let request =
            http::Request::new("POST", url).with_header("content-type", "text/plain").with_body(ids.join("\n"));
        DeliveryError::check_response(&http::send(&request)?)
    }
}

export_delivery!(Relay);
