//! Devices over MQTT (docs/mqtt.md): the gateway is a client of the broker on a
//! persistent session. Messages of devices are stored durably before their PUBACK (manual
//! acks), in order per device; queued commands are published to online devices at once.
//!
//! Three tasks: the connection (polls the event loop, never blocks, resubscribes on every
//! connection, backs off on errors), the workers (a fixed set; a device always lands on
//! the same one, so its messages keep their order), and the command pusher (takes a
//! device's queued commands when one is queued or the device comes online).
//! Memory stays bounded under floods because QoS 1 messages are acknowledged only once
//! stored: the broker sends at most its in-flight window before waiting for PUBACKs.
pub mod config;
pub mod topics;

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, Publish, QoS, TlsConfiguration, Transport};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

pub use config::MqttConfig;
use topics::Channel;

use super::device_auth::{check_token, decrypt_body, find_device};
use super::native::parse_upload;
use super::native_commands::WireCommand;
use crate::gateway::Gateway;
use crate::plugin::bindings::dialect::exports::biogate::plugin::dialect_handler::{DeviceContext, DialectError};
use crate::plugin::bindings::types::{Command, DeviceStatus, EventBody};
use crate::plugin::{DialectPlugin, LoadedPlugin};
use crate::store::Device;
use crate::web::LinkState;

/// Workers storing messages; a device always maps to the same one.
const WORKERS: usize = 8;
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A `status` payload.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusPayload {
    #[serde(rename = "AuthToken", default)]
    auth_token: Option<String>,
    online: bool,
    #[serde(default)]
    info: std::collections::BTreeMap<String, String>,
}

/// Why a message was not stored.
enum Refusal {
    /// It can never be stored (unknown device, wrong token, unreadable): ack and drop.
    Permanent(&'static str, String),
    /// The gateway failed (storage): do not ack; the broker delivers it again.
    Transient(String),
    /// The disk is below its reserve: do not ack; the worker tries the same message again
    /// once space is back (the broker would only send it again after a reconnection).
    Full,
}

/// How often a message refused for the disk reserve is tried again.
const FULL_RETRY: Duration = Duration::from_millis(500);

struct Shared {
    gw: Arc<Gateway>,
    client: AsyncClient,
    prefix: String,
    dialect: Option<Arc<DialectPlugin>>,
    online: Mutex<HashSet<String>>,
    came_online: mpsc::UnboundedSender<String>,
}

fn options(cfg: &MqttConfig) -> anyhow::Result<MqttOptions> {
    let broker = cfg.broker().map_err(|e| anyhow::anyhow!("mqtt.url: {e}"))?;
    let mut opts = MqttOptions::new(cfg.client_id.clone(), broker.host, broker.port);
    opts.set_keep_alive(Duration::from_secs(cfg.keep_alive_secs))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_inflight(cfg.max_in_flight)
        .set_request_channel_capacity(4096)
        .set_max_packet_size(8 << 20, 8 << 20);
    if let (Some(user), Some(password)) = (&cfg.username, &cfg.password) {
        opts.set_credentials(user.clone(), password.clone());
    }
    if broker.tls {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls))));
    }
    Ok(opts)
}

/// Connects to the broker and runs the MQTT device path until `shutdown`; the returned
/// state tells whether the gateway is currently subscribed.
pub fn start(gw: Arc<Gateway>, cfg: MqttConfig, shutdown: watch::Receiver<bool>) -> anyhow::Result<LinkState> {
    let dialect = match &cfg.dialect {
        Some(name) => match gw.plugins.get(name) {
            Some(LoadedPlugin::Dialect(p)) => Some(p.clone()),
            _ => anyhow::bail!("mqtt.dialect: {name:?} is not a loaded dialect plugin"),
        },
        None => None,
    };
    let (client, mut eventloop) = AsyncClient::new(options(&cfg)?, 4096);
    // Commands and acks are small packets: without TCP_NODELAY, Nagle and delayed ACKs
    // add ~40 ms per hop.
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let (came_online, online_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        gw,
        client: client.clone(),
        prefix: cfg.topic_prefix.clone(),
        dialect,
        online: Mutex::default(),
        came_online,
    });
    let workers: Vec<mpsc::UnboundedSender<Publish>> = (0..WORKERS)
        .map(|_| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(worker(shared.clone(), rx));
            tx
        })
        .collect();
    tokio::spawn(push_commands(shared.clone(), online_rx, shutdown.clone()));

    let subscriptions = topics::subscriptions(&cfg.topic_prefix, cfg.shared_group.as_deref());
    let url = cfg.url.clone();
    let mut shutdown = shutdown;
    let link = LinkState::default();
    link.set_subscribed(false);
    let state = link.clone();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        // Subscriptions the broker granted on the current connection.
        let mut granted = 0;
        loop {
            let event = tokio::select! {
                e = eventloop.poll() => e,
                _ = shutdown.changed() => {
                    let _ = client.try_disconnect();
                    return;
                }
            };
            match event {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                    tracing::info!(broker = %url, session_present = ack.session_present, "connected to the MQTT broker");
                    metrics::counter!("biogate_mqtt_connections_total").increment(1);
                    backoff = Duration::from_millis(100);
                    granted = 0;
                    for topic in &subscriptions {
                        if let Err(error) = client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                            tracing::error!(%error, topic, "subscribing failed");
                        }
                    }
                }
                Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                    if ack.return_codes.iter().any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure)) {
                        tracing::error!(broker = %url, "the broker refused a subscription; check its ACL for the gateway's client");
                    } else {
                        granted += 1;
                        if granted == subscriptions.len() {
                            tracing::info!(broker = %url, topics = ?subscriptions, "subscribed to the device topics");
                            state.set_subscribed(true);
                        }
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(publish))) => {
                    metrics::counter!("biogate_mqtt_messages_total").increment(1);
                    let slot = match topics::parse(&shared.prefix, &publish.topic) {
                        Some((device, _)) => {
                            let mut h = std::collections::hash_map::DefaultHasher::new();
                            device.hash(&mut h);
                            (h.finish() as usize) % WORKERS
                        }
                        None => 0,
                    };
                    let _ = workers[slot].send(publish);
                }
                Ok(_) => {}
                Err(error) => {
                    state.set_subscribed(false);
                    tracing::warn!(%error, broker = %url, retry_in_ms = backoff.as_millis() as u64, "MQTT connection failed");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    });
    Ok(link)
}

/// Stores the messages of its devices one at a time, acknowledging each once durable.
async fn worker(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Publish>) {
    while let Some(publish) = rx.recv().await {
        let outcome = loop {
            match handle(&shared, &publish).await {
                // Held, unacknowledged, and tried again in place: the messages after it
                // (of this worker's devices) keep their order, and the broker, whose
                // in-flight window fills up, stops sending more.
                Err(Refusal::Full) => tokio::time::sleep(FULL_RETRY).await,
                other => break other,
            }
        };
        match outcome {
            Ok(()) => {}
            Err(Refusal::Permanent(reason, detail)) => {
                tracing::warn!(topic = %publish.topic, reason, %detail, "MQTT message refused");
                metrics::counter!("biogate_mqtt_rejected_total", "reason" => reason).increment(1);
            }
            Err(Refusal::Transient(error)) => {
                tracing::error!(topic = %publish.topic, %error, "storing an MQTT message failed; the broker will deliver it again");
                continue;
            }
            // Retried in the loop above; never acknowledged.
            Err(Refusal::Full) => continue,
        }
        if let Err(error) = shared.client.ack(&publish).await {
            tracing::warn!(%error, "acknowledging an MQTT message failed");
        }
    }
}

async fn handle(shared: &Shared, publish: &Publish) -> Result<(), Refusal> {
    let gw = &shared.gw;
    let Some((device_id, channel)) = topics::parse(&shared.prefix, &publish.topic) else {
        return Err(Refusal::Permanent("topic", format!("not a device topic: {}", publish.topic)));
    };
    let device = find_device(&gw.registry, Some(&device_id), gw.config.config.server.auto_register)
        .map_err(|e| Refusal::Permanent("device", e.message))?;
    // Before a dialect plugin sees it, as on HTTP: no plugin state moves on for a message
    // that is not stored.
    gw.store.reserve().admit(publish.payload.len() as u64).map_err(|_| Refusal::Full)?;
    let bodies = match &shared.dialect {
        Some(plugin) => dialect_events(plugin, &device, &publish.topic, &publish.payload).await?,
        None => native_payload(&device, channel, &publish.payload)
            .map_err(|(reason, detail)| Refusal::Permanent(reason, detail))?,
    };
    let status = bodies.iter().rev().find_map(|b| match b {
        EventBody::DeviceStatus(s) => Some(s.online),
        _ => None,
    });
    if !bodies.is_empty() {
        gw.ingest.accept(&device, bodies).await.map_err(|e| match e {
            e if e.is_disk_full() => Refusal::Full,
            e => Refusal::Transient(e.to_string()),
        })?;
    }
    match status {
        Some(true) => {
            // Seen until its session says otherwise (its `status` offline, the last will).
            gw.operations.presence.reported(&device.id, true, true);
            shared.online.lock().unwrap_or_else(|p| p.into_inner()).insert(device.id.clone());
            let _ = shared.came_online.send(device.id.clone());
        }
        Some(false) => {
            gw.operations.presence.reported(&device.id, false, true);
            shared.online.lock().unwrap_or_else(|p| p.into_inner()).remove(&device.id);
        }
        None => {}
    }
    Ok(())
}

/// The events of a payload on one of `device`'s topics in biogate's own protocol (no
/// dialect plugin): decrypted for the device, then an upload (`punch`, `cmd/result`) or a
/// status. A refusal is the `reason` label of `biogate_mqtt_rejected_total` and a detail.
pub fn native_payload(
    device: &Device,
    channel: Channel,
    payload: &[u8],
) -> Result<Vec<EventBody>, (&'static str, String)> {
    let plaintext = decrypt_body(device, payload).map_err(|e| ("encryption", e.message))?;
    match channel {
        Channel::Punch | Channel::Result => {
            parse_upload(device, &plaintext, None).map_err(|e| (upload_reason(&e), describe(e)))
        }
        Channel::Status => {
            let status: StatusPayload =
                serde_json::from_slice(&plaintext).map_err(|e| ("payload", format!("unreadable status: {e}")))?;
            check_token(device, status.auth_token.as_deref()).map_err(|e| ("auth", e.message))?;
            Ok(vec![EventBody::DeviceStatus(DeviceStatus {
                online: status.online,
                info: status.info.into_iter().collect(),
            })])
        }
    }
}

/// The `reason` label of a refused upload: a wrong AuthToken counts as `auth`, as it
/// does on the status channel, anything else as `payload`.
fn upload_reason(error: &crate::web::error::ApiError) -> &'static str {
    if error.http == axum::http::StatusCode::UNAUTHORIZED { "auth" } else { "payload" }
}

fn describe(error: crate::web::error::ApiError) -> String {
    match error.field {
        Some(field) => format!("{field}: {}", error.message),
        None => error.message,
    }
}

fn context(device: &Device) -> DeviceContext {
    DeviceContext {
        device_id: device.id.clone(),
        label: device.label.clone(),
        utc_offset_minutes: device.utc_offset_minutes,
    }
}

async fn dialect_events(
    plugin: &Arc<DialectPlugin>,
    device: &Device,
    topic: &str,
    payload: &[u8],
) -> Result<Vec<EventBody>, Refusal> {
    let (p, ctx, topic, payload) = (plugin.clone(), context(device), topic.to_string(), payload.to_vec());
    match tokio::task::spawn_blocking(move || p.handle_mqtt(&ctx, &topic, &payload)).await {
        Ok(Ok(Ok(events))) => Ok(events),
        Ok(Ok(Err(DialectError::BadRequest(m) | DialectError::Refused(m)))) => Err(Refusal::Permanent("dialect", m)),
        // A faulty plugin: the message stays unacknowledged (the broker re-delivers it
        // after a reconnect); the fault is logged and counted by the runtime.
        Ok(Err(fault)) => Err(Refusal::Transient(fault.to_string())),
        Err(error) => Err(Refusal::Transient(error.to_string())),
    }
}

/// Publishes queued commands to online devices as soon as they are queued or the device
/// comes online.
async fn push_commands(
    shared: Arc<Shared>,
    mut came_online: mpsc::UnboundedReceiver<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut queued = shared.gw.operations.subscribe_queued();
    loop {
        let device = tokio::select! {
            d = queued.recv() => match d {
                Ok(d) => d,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let online: Vec<String> = shared.online.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
                    for d in online {
                        push_device(&shared, &d).await;
                    }
                    continue;
                }
                Err(_) => return,
            },
            Some(d) = came_online.recv() => d,
            _ = shutdown.changed() => return,
        };
        push_device(&shared, &device).await;
    }
}

async fn push_device(shared: &Shared, device_id: &str) {
    if !shared.online.lock().unwrap_or_else(|p| p.into_inner()).contains(device_id) {
        return;
    }
    let Some(device) = shared.gw.registry.get(device_id) else { return };
    loop {
        // Devices on the plain form recognise a repeated operation id; a dialect's may not.
        let commands = match shared.gw.operations.take_durably(device_id, 16, shared.dialect.is_none()).await {
            Ok(c) if c.is_empty() => return,
            Ok(c) => c,
            Err(error) => {
                tracing::error!(%error, device = device_id, "reading the command queue failed");
                return;
            }
        };
        for command in commands {
            let id = command.operation_id.clone();
            match encode(shared, &device, command).await {
                Ok((topic, payload)) => {
                    if let Err(error) = shared.client.publish(topic, QoS::AtLeastOnce, false, payload).await {
                        tracing::error!(%error, device = device_id, operation = %id, "publishing a command failed");
                    }
                    metrics::counter!("biogate_commands_sent_total").increment(1);
                }
                Err(error) => {
                    tracing::warn!(%error, device = device_id, operation = %id, "the command cannot be encoded for MQTT; the operation fails");
                    let reason = format!("the command could not be encoded for the device: {error}");
                    if let Err(error) = shared.gw.operations.fail_undeliverable(&id, reason).await {
                        tracing::error!(%error, device = device_id, operation = %id, "recording the failed operation failed");
                    }
                }
            }
        }
    }
}

async fn encode(shared: &Shared, device: &Device, command: Command) -> Result<(String, Vec<u8>), String> {
    if let Some(plugin) = &shared.dialect {
        let (p, ctx) = (plugin.clone(), context(device));
        return match tokio::task::spawn_blocking(move || p.encode_mqtt_command(&ctx, &command)).await {
            Ok(Ok(Ok(message))) => Ok((message.topic, message.payload)),
            Ok(Ok(Err(DialectError::BadRequest(m) | DialectError::Refused(m)))) => Err(m),
            Ok(Err(fault)) => Err(fault.to_string()),
            Err(e) => Err(e.to_string()),
        };
    }
    let json = serde_json::to_vec(&WireCommand::from(command)).map_err(|e| e.to_string())?;
    let payload = match device.cipher() {
        Some(cipher) => cipher.encrypt(&json).map_err(|e| e.to_string())?.into_bytes(),
        None => json,
    };
    Ok((topics::command_topic(&shared.prefix, &device.id), payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_and_plain_urls_build_options() {
        let plain = MqttConfig { url: "mqtt://127.0.0.1:1884".into(), ..MqttConfig::default() };
        assert_eq!(options(&plain).unwrap().broker_address(), ("127.0.0.1".to_string(), 1884));
        let tls = MqttConfig { url: "mqtts://broker.example.com".into(), ..MqttConfig::default() };
        let opts = options(&tls).unwrap();
        assert_eq!(opts.broker_address(), ("broker.example.com".to_string(), 8883));
        assert!(matches!(opts.transport(), Transport::Tls(_)));
        assert!(options(&MqttConfig { url: "http://x".into(), ..MqttConfig::default() }).is_err());
    }
}
