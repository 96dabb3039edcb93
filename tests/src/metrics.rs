//! The gateway's Prometheus text (`/metrics`, behind the admin key) and its values.

/// The text of `{base}/metrics`, read with the admin key; empty when the gateway does not
/// answer.
pub async fn scrape(base: &str, admin_key: &str) -> String {
    let response = reqwest::Client::new().get(format!("{base}/metrics")).bearer_auth(admin_key).send().await;
    match response {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The value of the sample `name` (with its labels, e.g. `x_sum{plugin="zkteco"}`), if
/// the text has it.
pub fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_are_found_by_their_whole_name() {
        let text = "# HELP a x\na_sum 1.5\na_sum_total 7\nb{plugin=\"z\"} 2\n";
        assert_eq!(super::value(text, "a_sum"), Some(1.5));
        assert_eq!(super::value(text, "b{plugin=\"z\"}"), Some(2.0));
        assert_eq!(super::value(text, "a"), None);
    }
}
