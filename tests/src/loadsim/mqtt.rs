//! A simulated MQTT device (docs/mqtt.md): its own MQTT session (one rumqttc client, small
//! in-flight window and request channel), a retained last will and an `online` status on
//! every connection, subscribed to `<prefix>/<id>/cmd` (QoS 1) and answering each command
//! on `<prefix>/<id>/cmd/result` with return code 0; its punches are QoS 1 messages on
//! `<prefix>/<id>/punch`, one per punch, published when due. Two tasks: the event loop
//! (connection, commands) and the punch clock.
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde::Deserialize;
use serde_json::json;

use super::context::{Context, Stats};
use super::plan::{self, Protocol, TOKEN};

/// Requests a device's client may queue before `publish` waits.
const CHANNEL: usize = 16;
/// QoS 1 messages in flight per device.
const INFLIGHT: u16 = 16;
/// Largest packet either way (commands are small).
const MAX_PACKET: usize = 256 << 10;

fn status(online: bool) -> Vec<u8> {
    json!({"AuthToken": TOKEN, "online": online}).to_string().into_bytes()
}

/// Starts device `index` on the broker of `ctx`; its tasks end when the run stops.
/// Does nothing when the context has no broker.
pub fn spawn(ctx: Arc<Context>, index: usize) {
    let Some((host, port)) = ctx.mqtt.clone() else {
        return;
    };
    let id = plan::device_id(Protocol::Mqtt, index);
    let topic = |leaf: &str| format!("{}/{id}/{leaf}", ctx.prefix);
    let mut options = MqttOptions::new(format!("sim-{id}"), host, port);
    options
        .set_clean_session(true)
        .set_keep_alive(Duration::from_secs(60))
        .set_inflight(INFLIGHT)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_last_will(LastWill::new(topic("status"), status(false), QoS::AtLeastOnce, true));
    let (client, mut eventloop) = AsyncClient::new(options, CHANNEL);
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);

    let (cmd_topic, result_topic, status_topic) = (topic("cmd"), topic("cmd/result"), topic("status"));
    let (events_ctx, events_client) = (ctx.clone(), client.clone());
    tokio::spawn(async move {
        let ctx = events_ctx;
        let client = events_client;
        let mut stop = ctx.stop.clone();
        let mut connected_once = false;
        loop {
            let event = tokio::select! {
                e = eventloop.poll() => e,
                _ = stop.wait_for(|s| *s) => break,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if !connected_once {
                        connected_once = true;
                        Stats::bump(&ctx.stats.connected);
                    }
                    // The gateway sends commands to devices whose last status said online.
                    let _ = client.try_subscribe(cmd_topic.clone(), QoS::AtLeastOnce);
                    let _ = client.try_publish(status_topic.clone(), QoS::AtLeastOnce, true, status(true));
                }
                Ok(Event::Incoming(Packet::Publish(publish))) if publish.topic == cmd_topic => {
                    Stats::bump(&ctx.stats.commands);
                    let Ok(command) = serde_json::from_slice::<CommandHead>(&publish.payload) else {
                        continue;
                    };
                    let Some(op) = command.operation_id else {
                        continue;
                    };
                    let body = json!({"AuthToken": TOKEN, "events": [
                        {"type": "command_result", "operation_id": op, "return_code": 0, "details": {}}
                    ]});
                    match client.try_publish(
                        result_topic.clone(),
                        QoS::AtLeastOnce,
                        false,
                        body.to_string().into_bytes(),
                    ) {
                        Ok(()) => Stats::bump(&ctx.stats.results),
                        Err(_) => Stats::bump(&ctx.stats.upload_errors),
                    }
                }
                Ok(_) => {}
                Err(_) => {
                    Stats::bump(&ctx.stats.mqtt_errors);
                    if !ctx.sleep(Duration::from_secs(1)).await {
                        break;
                    }
                }
            }
        }
        let _ = client.try_disconnect();
    });

    tokio::spawn(async move {
        let punch_topic = format!("{}/{}/punch", ctx.prefix, plan::device_id(Protocol::Mqtt, index));
        let mut next = 0u64;
        loop {
            if !ctx.wait_due(index, next).await {
                return;
            }
            for seq in ctx.due_now(index, next) {
                ctx.checker.sending(index, seq);
                let event = json!({"type": "punch", "user_id": plan::user_id(seq), "log_time": plan::log_time(ctx.epoch, seq), "punch_type": "CheckIn", "input_type": "Face"});
                let payload = json!({"AuthToken": TOKEN, "events": [event]}).to_string().into_bytes();
                if client.publish(punch_topic.clone(), QoS::AtLeastOnce, false, payload).await.is_err() {
                    return;
                }
                Stats::bump(&ctx.stats.punches_acked);
                next = seq + 1;
            }
        }
    });
}

#[derive(Deserialize)]
struct CommandHead {
    operation_id: Option<String>,
}
