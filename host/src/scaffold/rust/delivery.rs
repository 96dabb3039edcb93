//! `{{name}}`: a biogate delivery plugin, a route's sink (`sink = { type = "plugin",
//! plugin = "{{name}}" }`). It gets batches of one device's events, in order; the
//! gateway retries a batch until it returns `Ok`, so a destination should de-duplicate
//! on the event `id`. It may call only the origins in its `allowed_hosts`.
use biogate_sdk::prelude::*;

/// The delivery plugin.
pub struct Plugin;

impl Delivery for Plugin {
    fn deliver(batch: Vec<Event>) -> Result<(), DeliveryError> {
        // An example: POST the batch's event ids, one per line, to the configured `url`.
        let url: String = config::require("url")?;
        let ids: Vec<&str> = batch.iter().map(|event| event.id.as_str()).collect();
        let request = http::Request::new("POST", url)
            .with_header("content-type", "text/plain")
            .with_body(ids.join("\n"));
        // 2xx: delivered; anything else: retried later (honouring Retry-After).
        DeliveryError::check_response(&http::send(&request)?)
    }
}

export_delivery!(Plugin);

#[cfg(test)]
mod tests {
    use biogate_sdk::prelude::*;
    use biogate_sdk::testing;

    use super::Plugin;

    #[test]
    fn a_batch_is_posted_and_a_refusal_is_retried() {
        testing::set_config(&[("url", "https://hr.example.com/punches")]);
        let batch = vec![
            testing::punch_event("D1", "7", 1_750_000_000, PunchType::CheckIn),
            testing::punch_event("D1", "7", 1_750_030_000, PunchType::CheckOut),
        ];
        testing::set_http_handler(|_| Ok(http::Response { status: 200, headers: vec![], body: vec![] }));
        Plugin::deliver(batch.clone()).expect("delivered");
        let sent = testing::http_requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].url, "https://hr.example.com/punches");
        assert_eq!(String::from_utf8_lossy(&sent[0].body), format!("{}\n{}", batch[0].id, batch[1].id));

        testing::set_http_handler(|_| Ok(http::Response { status: 503, headers: vec![], body: vec![] }));
        assert!(matches!(Plugin::deliver(batch), Err(DeliveryError::Retry(_))));
    }
}
