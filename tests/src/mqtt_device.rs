//! A device speaking biogate's MQTT protocol (docs/mqtt.md), and a plain MQTT client
//! ([`MqttProbe`]) for tests that play the gateway or watch topics.
//!
//! The device keeps a persistent session (`clean_session = false`, client id `dev-<id>`),
//! sets a retained last will `{"AuthToken","online":false}` on `<prefix>/<id>/status`,
//! publishes `{"AuthToken","online":true}` there (retained) on every connection, applies
//! the commands of `<prefix>/<id>/cmd` to a [`TerminalState`] and answers on
//! `<prefix>/<id>/cmd/result`, and sends punches on `<prefix>/<id>/punch`.
//!
//! Every message it publishes is QoS 1 and stays in the device's own outbox until the broker
//! acknowledged it (PUBACK): a message whose connection broke is sent again, in order,
//! on the next connection, whatever the broker remembered of the session. A punch is
//! therefore never lost by the device; it may reach the broker twice (QoS 1).
use crate::mosquitto::Broker;
use crate::native_device::{NativeDevice, Received, SimUser, TerminalState};
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, LastWill, MqttOptions, Outgoing, QoS};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// How long connecting, subscribing or a graceful stop may take before the kit gives up.
const PATIENCE: Duration = Duration::from_secs(30);
/// Requests rumqttc may hold before they are written (far above any test's outbox).
const CHANNEL_CAPACITY: usize = 1 << 20;
/// Largest packet in either direction (rumqttc's default is 10 KiB: a user with a photo,
/// or a batch of punches, is larger).
const MAX_PACKET: usize = 64 << 20;
/// Keep-alive: a silent broker (or device) is noticed within seconds.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Where a broker is: a port on 127.0.0.1, `mqtt://host:port` (or `tcp://`, or
/// `host:port`), or a [`Broker`].
pub trait BrokerAddress {
    /// Host and port.
    fn host_port(&self) -> (String, u16);
}

impl BrokerAddress for u16 {
    fn host_port(&self) -> (String, u16) {
        ("127.0.0.1".to_string(), *self)
    }
}

impl BrokerAddress for str {
    fn host_port(&self) -> (String, u16) {
        let rest = self.strip_prefix("mqtt://").or_else(|| self.strip_prefix("tcp://")).unwrap_or(self);
        let rest = rest.trim_end_matches('/');
        match rest.rsplit_once(':') {
            Some((host, port)) => {
                (host.to_string(), port.parse().unwrap_or_else(|_| panic!("bad port in the broker address {self:?}")))
            }
            None => (rest.to_string(), 1883),
        }
    }
}

impl BrokerAddress for String {
    fn host_port(&self) -> (String, u16) {
        self.as_str().host_port()
    }
}

impl BrokerAddress for Broker {
    fn host_port(&self) -> (String, u16) {
        ("127.0.0.1".to_string(), self.port())
    }
}

impl<T: BrokerAddress + ?Sized> BrokerAddress for &T {
    fn host_port(&self) -> (String, u16) {
        (**self).host_port()
    }
}

/// Resolves when the broker acknowledged the message (PUBACK). Dropping it does not cancel
/// the message. Panics when the sender was dropped before the acknowledgement.
#[must_use = "await it to know the broker has the message"]
pub struct Acked(oneshot::Receiver<()>);

impl Future for Acked {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.expect("the MQTT client stopped before the broker acknowledged the message"))
    }
}

/// A simulated MQTT device. Dropping it drops its connection abruptly (last will).
pub struct MqttDevice {
    /// Its id (`stgid`): the topics are `<prefix>/<id>/...`.
    pub id: String,
    /// Its AuthToken, in every payload.
    pub token: String,
    /// The topic prefix (`[mqtt] topic_prefix`).
    pub prefix: String,
    state: Arc<Mutex<TerminalState>>,
    session: Session<DeviceRole>,
}

impl MqttDevice {
    /// Connects as `dev-<id>` and returns once connected and subscribed to its commands.
    /// Panics when that does not happen within 30 s.
    pub async fn connect(broker: impl BrokerAddress, device_id: &str, token: &str, prefix: &str) -> MqttDevice {
        let (host, port) = broker.host_port();
        let topic = |leaf: &str| format!("{prefix}/{device_id}/{leaf}");
        let mut options = MqttOptions::new(format!("dev-{device_id}"), host, port);
        options
            .set_clean_session(false)
            .set_keep_alive(KEEP_ALIVE)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_last_will(LastWill::new(topic("status"), status(token, false), QoS::AtLeastOnce, true));
        let state = Arc::new(Mutex::new(TerminalState::default()));
        let role = DeviceRole {
            token: token.to_string(),
            status_topic: topic("status"),
            cmd_topic: topic("cmd"),
            result_topic: topic("cmd/result"),
            state: state.clone(),
            answers: Mutex::new(HashMap::new()),
        };
        let mut session = Session::new(options, role);
        session.start().await;
        MqttDevice { id: device_id.to_string(), token: token.to_string(), prefix: prefix.to_string(), state, session }
    }

    /// `<prefix>/<id>/<leaf>`.
    pub fn topic(&self, leaf: &str) -> String {
        format!("{}/{}/{leaf}", self.prefix, self.id)
    }

    /// Sends one punch (`input_type` Fingerprint) and returns once the broker has it.
    pub async fn punch(&self, user: &str, log_time: &str, punch_type: &str) {
        self.queue_punch(user, log_time, punch_type).await
    }

    /// Sends many punches in one message and returns once the broker has it.
    pub async fn punch_batch<U, T, P>(&self, punches: impl IntoIterator<Item = (U, T, P)>)
    where
        U: AsRef<str>,
        T: AsRef<str>,
        P: AsRef<str>,
    {
        let events =
            punches.into_iter().map(|(u, t, p)| NativeDevice::punch(u.as_ref(), t.as_ref(), p.as_ref())).collect();
        self.queue_events(events).await
    }

    /// Puts one punch in the outbox; await the result to know the broker has it. Queued
    /// punches are sent in order, also across reconnections.
    pub fn queue_punch(&self, user: &str, log_time: &str, punch_type: &str) -> Acked {
        self.queue_events(vec![NativeDevice::punch(user, log_time, punch_type)])
    }

    /// Puts `{"AuthToken", "events": events}` on `<prefix>/<id>/punch` in the outbox.
    pub fn queue_events(&self, events: Vec<Value>) -> Acked {
        let body = json!({"AuthToken": self.token, "events": events});
        self.publish_raw(&self.topic("punch"), body.to_string().into_bytes(), false)
    }

    /// Publishes any payload (QoS 1) on any topic through the outbox: for malformed or
    /// wrongly authenticated messages.
    pub fn publish_raw(&self, topic: &str, payload: Vec<u8>, retain: bool) -> Acked {
        self.session.send(topic, payload, retain, true)
    }

    /// A user the device holds.
    pub fn user(&self, id: &str) -> Option<SimUser> {
        lock(&self.state).users.get(id).cloned()
    }

    /// The operation ids of the commands applied, in order (a command delivered again is
    /// answered again but applied once).
    pub fn received_ids(&self) -> Vec<String> {
        lock(&self.state).received.iter().map(|r| r.operation_id.clone()).collect()
    }

    /// What the device holds.
    pub fn state(&self) -> Arc<Mutex<TerminalState>> {
        self.state.clone()
    }

    /// Whether it is connected now.
    pub fn is_connected(&self) -> bool {
        self.session.status().connected
    }

    /// How many connections (CONNACKs) it had.
    pub fn connections(&self) -> u64 {
        self.session.status().connections
    }

    /// Messages sent but not yet acknowledged by the broker.
    pub fn unacknowledged(&self) -> usize {
        lock(&self.session.core.link).outbox.len()
    }

    /// Drops the TCP connection without DISCONNECT (the broker publishes the last will)
    /// and stays offline until [`MqttDevice::reconnect`]; the outbox is kept (punches
    /// queued meanwhile are acknowledged after the reconnection).
    pub async fn disconnect_abruptly(&mut self) {
        self.session.abort().await;
    }

    /// Connects again (same client id, same session, same outbox) and returns once
    /// subscribed.
    pub async fn reconnect(&mut self) {
        self.session.start().await;
    }

    /// Goes offline as a well-behaved device does: publishes `{"online": false}` (retained),
    /// then DISCONNECT (the broker drops the last will). Returns what it held.
    pub async fn stop(mut self) -> Arc<Mutex<TerminalState>> {
        let offline = status(&self.token, false);
        let topic = self.topic("status");
        self.session.stop(Some((topic, offline))).await;
        self.state.clone()
    }
}

fn status(token: &str, online: bool) -> Vec<u8> {
    json!({"AuthToken": token, "online": online}).to_string().into_bytes()
}

struct DeviceRole {
    token: String,
    status_topic: String,
    cmd_topic: String,
    result_topic: String,
    state: Arc<Mutex<TerminalState>>,
    /// Answers by operation id: a command delivered again is answered the same way.
    answers: Mutex<HashMap<String, (i32, Value)>>,
}

impl Role for DeviceRole {
    fn subscribes(&self) -> bool {
        true
    }

    fn on_connect(&self, link: &mut Link) {
        link.client().try_subscribe(self.cmd_topic.clone(), QoS::AtLeastOnce).expect("queueing SUBSCRIBE");
        // Not kept across connections: the next connection publishes a fresh one.
        drop(link.send(&self.status_topic, status(&self.token, true), true, false));
    }

    fn on_message(&self, link: &mut Link, publish: rumqttc::Publish) {
        if publish.topic != self.cmd_topic {
            return;
        }
        let command: Value = match serde_json::from_slice(&publish.payload) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("mqtt device: unreadable command on {}: {e}", publish.topic);
                return;
            }
        };
        let operation_id = command["operation_id"].as_str().unwrap_or_default().to_string();
        let (code, details) = {
            let mut answers = lock(&self.answers);
            match answers.get(&operation_id) {
                Some(answer) => answer.clone(),
                None => {
                    let mut state = lock(&self.state);
                    let (code, details) = state.apply(&command);
                    state.received.push(Received {
                        operation_id: operation_id.clone(),
                        command,
                        return_code: code,
                        details: details.clone(),
                    });
                    answers.insert(operation_id.clone(), (code, details.clone()));
                    (code, details)
                }
            }
        };
        let body = json!({"AuthToken": self.token, "events": [
            {"type": "command_result", "operation_id": operation_id, "return_code": code, "details": details}
        ]});
        drop(link.send(&self.result_topic, body.to_string().into_bytes(), false, true));
    }
}

/// A message a [`MqttProbe`] received.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Set when the broker sent it from its retained store.
    pub retain: bool,
    /// Set when the broker sent it again (session resumed).
    pub dup: bool,
}

impl Message {
    /// The payload as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

/// A plain MQTT client: subscribes (QoS 1) to its filters on every connection and hands
/// out what it receives; publishes QoS 1 through an outbox like the device. With a fixed
/// client id and `clean_session = false` it plays the gateway's persistent session.
pub struct MqttProbe {
    session: Session<ProbeRole>,
    messages: mpsc::UnboundedReceiver<Message>,
}

impl MqttProbe {
    /// Connects and returns once subscribed to `filters` (or connected, without filters).
    pub async fn connect(
        broker: impl BrokerAddress,
        client_id: &str,
        clean_session: bool,
        filters: &[&str],
    ) -> MqttProbe {
        let (host, port) = broker.host_port();
        let mut options = MqttOptions::new(client_id, host, port);
        options.set_clean_session(clean_session).set_keep_alive(KEEP_ALIVE).set_max_packet_size(MAX_PACKET, MAX_PACKET);
        let (tx, messages) = mpsc::unbounded_channel();
        let role = ProbeRole { filters: filters.iter().map(|f| f.to_string()).collect(), messages: tx };
        let mut session = Session::new(options, role);
        session.start().await;
        MqttProbe { session, messages }
    }

    /// Publishes a JSON payload (QoS 1); resolves on the broker's PUBACK.
    pub fn publish(&self, topic: &str, payload: &Value, retain: bool) -> Acked {
        self.session.send(topic, payload.to_string().into_bytes(), retain, true)
    }

    /// Publishes raw bytes (QoS 1); resolves on the broker's PUBACK.
    pub fn publish_raw(&self, topic: &str, payload: Vec<u8>, retain: bool) -> Acked {
        self.session.send(topic, payload, retain, true)
    }

    /// The next message, or `None` when none came within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Message> {
        tokio::time::timeout(wait, self.messages.recv()).await.ok().flatten()
    }

    /// The next message on `topic` (others are skipped), or `None` within `wait`.
    pub async fn next_on(&mut self, topic: &str, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.messages.recv()).await.ok().flatten()?;
            if message.topic == topic {
                return Some(message);
            }
        }
    }

    /// Whether it is connected now.
    pub fn is_connected(&self) -> bool {
        self.session.status().connected
    }

    /// Drops the connection without DISCONNECT and stays offline until `reconnect`.
    pub async fn disconnect_abruptly(&mut self) {
        self.session.abort().await;
    }

    /// Connects again (same client id) and returns once subscribed.
    pub async fn reconnect(&mut self) {
        self.session.start().await;
    }

    /// Sends DISCONNECT (a persistent session stays on the broker) and stays offline
    /// until `reconnect`.
    pub async fn disconnect(&mut self) {
        self.session.stop(None).await;
    }
}

struct ProbeRole {
    filters: Vec<String>,
    messages: mpsc::UnboundedSender<Message>,
}

impl Role for ProbeRole {
    fn subscribes(&self) -> bool {
        !self.filters.is_empty()
    }

    fn on_connect(&self, link: &mut Link) {
        if !self.filters.is_empty() {
            let filters = self.filters.iter().map(|f| rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
            link.client().try_subscribe_many(filters).expect("queueing SUBSCRIBE");
        }
    }

    fn on_message(&self, _link: &mut Link, publish: rumqttc::Publish) {
        let _ = self.messages.send(Message {
            topic: publish.topic,
            payload: publish.payload.to_vec(),
            retain: publish.retain,
            dup: publish.dup,
        });
    }
}

// ---- the connection machinery shared by the device and the probe ----

/// What a client does on each connection and with each message. Both run with the link
/// locked, on the event loop's task: they must not block.
trait Role: Send + Sync + 'static {
    /// Whether `on_connect` sends a SUBSCRIBE (then `start` waits for its SUBACK).
    fn subscribes(&self) -> bool;
    /// Subscribes and publishes what each new connection needs (after the CONNACK).
    fn on_connect(&self, link: &mut Link);
    /// A PUBLISH from the broker.
    fn on_message(&self, link: &mut Link, publish: rumqttc::Publish);
}

#[derive(Debug, Clone, Copy, Default)]
struct LinkStatus {
    connected: bool,
    connections: u64,
    subscriptions: u64,
}

/// A message waiting for its PUBACK.
struct Entry {
    seq: u64,
    topic: String,
    payload: Vec<u8>,
    retain: bool,
    /// Sent again on the next connection when this one breaks first.
    keep: bool,
    acked: Option<oneshot::Sender<()>>,
}

/// The client's side of the connection: the outbox, and which packet id carries which
/// outbox entry.
///
/// rumqttc reports `Outgoing::Publish(pkid)` when it writes a PUBLISH, in the order the
/// requests were queued; requests are only queued with this lock held, so `handed` (the
/// entries queued, in order) tells which entry got which pkid. rumqttc's own replay of
/// unacknowledged messages is switched off (its pending list is cleared on every
/// connection loss): rumqttc drops that list whenever the broker answers
/// `session_present = false`, so the outbox does the replay instead.
struct Link {
    /// The current connection's client (`None` before the first start).
    client: Option<AsyncClient>,
    connected: bool,
    stopping: bool,
    outbox: VecDeque<Entry>,
    next_seq: u64,
    handed: VecDeque<u64>,
    inflight: HashMap<u16, u64>,
    /// A publish rumqttc held back because its pkid was still in flight (`AwaitAck`).
    collided: Option<(u16, Option<u64>)>,
}

impl Link {
    /// Adds a QoS 1 message to the outbox, and queues it at once when connected.
    fn send(&mut self, topic: &str, payload: Vec<u8>, retain: bool, keep: bool) -> Acked {
        let (tx, rx) = oneshot::channel();
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outbox.push_back(Entry { seq, topic: topic.to_string(), payload, retain, keep, acked: Some(tx) });
        if self.connected {
            self.hand(seq);
        }
        Acked(rx)
    }

    fn client(&self) -> &AsyncClient {
        self.client.as_ref().expect("an MQTT client (started)")
    }

    fn hand(&mut self, seq: u64) {
        let entry = self.outbox.iter().find(|e| e.seq == seq).expect("an outbox entry");
        self.client()
            .try_publish(entry.topic.clone(), QoS::AtLeastOnce, entry.retain, entry.payload.clone())
            .unwrap_or_else(|e| panic!("rumqttc refused a publish on {}: {e}", entry.topic));
        self.handed.push_back(seq);
    }

    /// Queues every outbox entry not yet queued on this connection, in order.
    fn hand_all(&mut self) {
        let seqs: Vec<u64> = self.outbox.iter().map(|e| e.seq).filter(|s| !self.handed.contains(s)).collect();
        for seq in seqs {
            self.hand(seq);
        }
    }

    fn written(&mut self, pkid: u16) {
        if pkid == 0 {
            return;
        }
        let seq = match self.collided.take() {
            Some((held, seq)) if held == pkid => seq,
            other => {
                self.collided = other;
                self.handed.pop_front()
            }
        };
        if let Some(seq) = seq {
            self.inflight.insert(pkid, seq);
        }
    }

    fn acknowledged(&mut self, pkid: u16) {
        let Some(seq) = self.inflight.remove(&pkid) else { return };
        if let Some(at) = self.outbox.iter().position(|e| e.seq == seq) {
            let mut entry = self.outbox.remove(at).expect("an outbox entry");
            if let Some(tx) = entry.acked.take() {
                let _ = tx.send(());
            }
        }
    }

    /// The connection is gone: nothing queued in rumqttc survives; the outbox does.
    fn lost(&mut self, eventloop: &mut EventLoop) {
        self.connected = false;
        // Moves what rumqttc still holds (in flight, or in its request channel) to its
        // pending list, which is then dropped: the outbox sends it again.
        eventloop.clean();
        eventloop.pending.clear();
        self.handed.clear();
        self.inflight.clear();
        self.collided = None;
        self.outbox.retain(|e| e.keep);
    }
}

struct Core<R: Role> {
    link: Mutex<Link>,
    status: watch::Sender<LinkStatus>,
    role: R,
}

/// A client that reconnects by itself, with its outbox; its event loop runs on a task.
struct Session<R: Role> {
    core: Arc<Core<R>>,
    options: MqttOptions,
    task: Option<JoinHandle<()>>,
}

impl<R: Role> Session<R> {
    fn new(options: MqttOptions, role: R) -> Self {
        let link = Link {
            client: None,
            connected: false,
            stopping: false,
            outbox: VecDeque::new(),
            next_seq: 0,
            handed: VecDeque::new(),
            inflight: HashMap::new(),
            collided: None,
        };
        let (status, _) = watch::channel(LinkStatus::default());
        Session { core: Arc::new(Core { link: Mutex::new(link), status, role }), options, task: None }
    }

    fn status(&self) -> LinkStatus {
        *self.core.status.borrow()
    }

    fn send(&self, topic: &str, payload: Vec<u8>, retain: bool, keep: bool) -> Acked {
        lock(&self.core.link).send(topic, payload, retain, keep)
    }

    /// Starts the event loop and waits for the next connection (and its SUBACK).
    async fn start(&mut self) {
        assert!(self.task.is_none(), "the MQTT client is already running");
        let before = self.status();
        let (client, mut eventloop) = AsyncClient::new(self.options.clone(), CHANNEL_CAPACITY);
        // Devices send small packets and wait for answers: no Nagle delay.
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        {
            let mut link = lock(&self.core.link);
            link.client = Some(client);
            link.stopping = false;
        }
        self.task = Some(tokio::spawn(drive(eventloop, self.core.clone())));
        let mut status = self.core.status.subscribe();
        let subscribes = self.core.role.subscribes();
        let ready = status.wait_for(|s| {
            s.connections > before.connections && (!subscribes || s.subscriptions > before.subscriptions)
        });
        if tokio::time::timeout(PATIENCE, ready).await.is_err() {
            let (host, port) = self.options.broker_address();
            panic!("MQTT client {} did not connect to {host}:{port} within {PATIENCE:?}", self.options.client_id());
        }
    }

    /// Kills the event loop: the socket closes without DISCONNECT.
    async fn abort(&mut self) {
        let Some(task) = self.task.take() else { return };
        task.abort();
        let _ = task.await;
        let mut link = lock(&self.core.link);
        link.connected = false;
        link.handed.clear();
        link.inflight.clear();
        link.collided = None;
        link.outbox.retain(|e| e.keep);
        self.core.status.send_modify(|s| s.connected = false);
    }

    /// Publishes `last` (retained) and waits for its PUBACK, then sends DISCONNECT; kills
    /// the event loop when it is not connected or that does not finish in time.
    async fn stop(&mut self, last: Option<(String, Vec<u8>)>) {
        let Some(mut task) = self.task.take() else { return };
        if self.status().connected {
            // Kept: should this connection break first, the next one sends it again.
            let acked = last.map(|(topic, payload)| self.send(&topic, payload, true, true));
            let finished = tokio::time::timeout(PATIENCE, async {
                if let Some(acked) = acked {
                    acked.await;
                }
                {
                    let mut link = lock(&self.core.link);
                    link.stopping = true;
                    let _ = link.client().try_disconnect();
                }
                (&mut task).await
            })
            .await;
            if finished.is_ok() {
                self.core.status.send_modify(|s| s.connected = false);
                return;
            }
        }
        self.task = Some(task);
        self.abort().await;
    }
}

impl<R: Role> Drop for Session<R> {
    /// Ends the event loop (no DISCONNECT: the broker publishes a device's last will).
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The event loop: handles each event with the link locked, and reconnects after errors
/// with a short backoff.
async fn drive<R: Role>(mut eventloop: EventLoop, core: Arc<Core<R>>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let event = eventloop.poll().await;
        match handle(event, &mut eventloop, &core) {
            Step::Next => {}
            Step::Connected => backoff = MIN_BACKOFF,
            Step::Stopped => return,
            Step::Lost => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

enum Step {
    Next,
    Connected,
    Lost,
    Stopped,
}

/// One event, with the link locked (never across an await).
fn handle<R: Role>(event: Result<Event, rumqttc::ConnectionError>, eventloop: &mut EventLoop, core: &Core<R>) -> Step {
    let mut link = lock(&core.link);
    match event {
        Ok(Event::Incoming(Incoming::ConnAck(_))) => {
            link.connected = true;
            link.handed.clear();
            link.inflight.clear();
            link.collided = None;
            core.role.on_connect(&mut link);
            link.hand_all();
            core.status.send_modify(|s| {
                s.connected = true;
                s.connections += 1;
            });
            return Step::Connected;
        }
        Ok(Event::Incoming(Incoming::SubAck(_))) => core.status.send_modify(|s| s.subscriptions += 1),
        Ok(Event::Incoming(Incoming::Publish(publish))) => core.role.on_message(&mut link, publish),
        Ok(Event::Incoming(Incoming::PubAck(ack))) => link.acknowledged(ack.pkid),
        Ok(Event::Outgoing(Outgoing::Publish(pkid))) => link.written(pkid),
        Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => {
            let seq = link.handed.pop_front();
            link.collided = Some((pkid, seq));
        }
        Ok(Event::Outgoing(Outgoing::Disconnect)) if link.stopping => {
            link.connected = false;
            core.status.send_modify(|s| s.connected = false);
            return Step::Stopped;
        }
        Ok(_) => {}
        Err(_) => {
            link.lost(eventloop);
            core.status.send_modify(|s| s.connected = false);
            return if link.stopping { Step::Stopped } else { Step::Lost };
        }
    }
    Step::Next
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bound on waiting for a message that must come (never a timing assertion).
    const WAIT: Duration = Duration::from_secs(30);

    fn time(i: usize) -> String {
        format!("2026-06-21 09:{:02}:{:02}", i / 60, i % 60)
    }

    /// The user ids of the punches in `message`, in order.
    fn punch_users(message: &Message) -> Vec<String> {
        let body = message.json();
        body["events"]
            .as_array()
            .unwrap_or_else(|| panic!("no events in {body}"))
            .iter()
            .map(|e| e["user_id"].as_str().expect("user_id").to_string())
            .collect()
    }

    /// Receives punch messages on `topic` until `count` distinct users arrived; returns
    /// them in the order of their first arrival (QoS 1 may repeat a message).
    async fn collect_punches(probe: &mut MqttProbe, topic: &str, count: usize) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        while seen.len() < count {
            let message = probe
                .next_on(topic, WAIT)
                .await
                .unwrap_or_else(|| panic!("only {} of {count} punches arrived: {seen:?}", seen.len()));
            for user in punch_users(&message) {
                if !seen.contains(&user) {
                    seen.push(user);
                }
            }
        }
        seen
    }

    fn numbers(range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| i.to_string()).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_command_is_applied_and_its_result_comes_back() {
        let broker = Broker::start();
        let mut gateway = MqttProbe::connect(&broker, "biogate", false, &["bg/+/cmd/result", "bg/+/status"]).await;
        let device = MqttDevice::connect(&broker, "DEV1", "tok-1", "bg").await;
        let online = gateway.next_on("bg/DEV1/status", WAIT).await.expect("the online status");
        assert_eq!(online.json(), json!({"AuthToken": "tok-1", "online": true}));

        let commands = [
            json!({"operation_id": "op-1", "type": "upsert_user", "user": {"user_id": "100", "first_name": "Manu", "role": "Admin",
                   "enabled": true, "templates": [{"kind": "Fingerprint", "index": 6, "data": "QUJD"}]}}),
            json!({"operation_id": "op-2", "type": "delete_user", "user_id": "7"}),
            json!({"operation_id": "op-3", "type": "get_device_info"}),
        ];
        for command in &commands {
            gateway.publish("bg/DEV1/cmd", command, false).await;
        }
        let mut results = Vec::new();
        for _ in &commands {
            let message = gateway
                .next_on("bg/DEV1/cmd/result", WAIT)
                .await
                .unwrap_or_else(|| panic!("results so far: {results:?}"));
            results.push(message.json());
        }
        for result in &results {
            assert_eq!(result["AuthToken"], "tok-1", "{result}");
            assert_eq!(result["events"].as_array().map(Vec::len), Some(1), "{result}");
            assert_eq!(result["events"][0]["type"], "command_result", "{result}");
        }
        let answers: Vec<(String, i64)> = results
            .iter()
            .map(|r| {
                (
                    r["events"][0]["operation_id"].as_str().unwrap_or_default().to_string(),
                    r["events"][0]["return_code"].as_i64().unwrap_or(i64::MIN),
                )
            })
            .collect();
        assert_eq!(answers, [("op-1".to_string(), 0), ("op-2".to_string(), -10), ("op-3".to_string(), 0)]);
        assert_eq!(results[2]["events"][0]["details"]["UserCount"], "1");

        let user = device.user("100").expect("user 100 on the device");
        assert_eq!(user.first_name.as_deref(), Some("Manu"));
        assert_eq!(user.role.as_deref(), Some("Admin"));
        assert_eq!(user.templates, [("Fingerprint".to_string(), Some(6), "QUJD".to_string())]);
        assert_eq!(device.received_ids(), ["op-1", "op-2", "op-3"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_command_delivered_twice_is_applied_once_and_answered_twice() {
        let broker = Broker::start();
        let mut gateway = MqttProbe::connect(&broker, "biogate", false, &["bg/+/cmd/result"]).await;
        let device = MqttDevice::connect(&broker, "DEV6", "tok-6", "bg").await;
        let command = json!({"operation_id": "op-5", "type": "reboot"});
        gateway.publish("bg/DEV6/cmd", &command, false).await;
        gateway.publish("bg/DEV6/cmd", &command, false).await;
        for _ in 0..2 {
            let result = gateway.next_on("bg/DEV6/cmd/result", WAIT).await.expect("a result");
            assert_eq!(result.json()["events"][0]["operation_id"], "op-5");
            assert_eq!(result.json()["events"][0]["return_code"], 0);
        }
        assert_eq!(device.received_ids(), ["op-5"]);
        assert_eq!(device.state().lock().expect("state").reboots, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_last_will_says_offline_after_an_abrupt_disconnect_and_stays_retained() {
        let broker = Broker::start();
        let mut gateway = MqttProbe::connect(&broker, "biogate", false, &["bg/+/status"]).await;
        let mut device = MqttDevice::connect(&broker, "DEV2", "tok-2", "bg").await;
        let online = gateway.next_on("bg/DEV2/status", WAIT).await.expect("the online status");
        assert_eq!(online.json(), json!({"AuthToken": "tok-2", "online": true}));

        device.disconnect_abruptly().await;
        assert!(!device.is_connected());
        let will = gateway.next_on("bg/DEV2/status", WAIT).await.expect("the last will");
        assert_eq!(will.json(), json!({"AuthToken": "tok-2", "online": false}));

        // Retained: a client that subscribes later is told the device is offline.
        let mut late = MqttProbe::connect(&broker, "late-watcher", true, &["bg/DEV2/status"]).await;
        let retained = late.next(WAIT).await.expect("the retained status");
        assert!(retained.retain, "{retained:?}");
        assert_eq!(retained.json(), json!({"AuthToken": "tok-2", "online": false}));

        device.reconnect().await;
        assert_eq!(device.connections(), 2);
        let again = gateway.next_on("bg/DEV2/status", WAIT).await.expect("online again");
        assert_eq!(again.json(), json!({"AuthToken": "tok-2", "online": true}));

        // A graceful stop says offline itself (the broker discards the will on DISCONNECT).
        device.stop().await;
        let offline = gateway.next_on("bg/DEV2/status", WAIT).await.expect("the offline status");
        assert_eq!(offline.json(), json!({"AuthToken": "tok-2", "online": false}));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_command_published_while_the_device_is_offline_reaches_it_when_it_returns() {
        let broker = Broker::start();
        let mut gateway = MqttProbe::connect(&broker, "biogate", false, &["bg/+/cmd/result"]).await;
        let mut device = MqttDevice::connect(&broker, "DEV4", "tok-4", "bg").await;
        device.disconnect_abruptly().await;

        // The broker queues it in the device's persistent session (QoS 1).
        gateway.publish("bg/DEV4/cmd", &json!({"operation_id": "op-9", "type": "unlock_door"}), false).await;
        assert!(device.received_ids().is_empty());

        device.reconnect().await;
        let result = gateway.next_on("bg/DEV4/cmd/result", WAIT).await.expect("the result");
        assert_eq!(result.json()["events"][0]["operation_id"], "op-9");
        assert_eq!(result.json()["events"][0]["return_code"], 0);
        assert_eq!(device.received_ids(), ["op-9"]);
        assert_eq!(device.state().lock().expect("state").unlocks, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn punches_queued_while_the_broker_restarts_all_arrive_in_order() {
        let mut broker = Broker::start();
        let mut gateway = MqttProbe::connect(&broker, "biogate", false, &["bg/+/punch"]).await;
        let device = MqttDevice::connect(&broker, "DEV3", "tok-3", "bg").await;
        for i in 0..5 {
            device.punch(&i.to_string(), &time(i), "CheckIn").await;
        }

        broker.stop();
        let queued: Vec<Acked> = (5..25).map(|i| device.queue_punch(&i.to_string(), &time(i), "CheckOut")).collect();
        // Nobody can acknowledge them: they wait in the device's outbox.
        assert!(device.unacknowledged() >= 20, "{} unacknowledged", device.unacknowledged());

        broker.restart();
        for acked in queued {
            tokio::time::timeout(WAIT, acked).await.expect("the broker acknowledged a queued punch after its restart");
        }
        for i in 25..30 {
            device.punch(&i.to_string(), &time(i), "CheckIn").await;
        }
        assert_eq!(device.unacknowledged(), 0);
        assert!(device.connections() >= 2);

        let users = collect_punches(&mut gateway, "bg/DEV3/punch", 30).await;
        assert_eq!(users, numbers(0..30));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_queued_for_an_offline_gateway_survive_a_broker_restart() {
        let mut broker = Broker::start();
        let mut gateway = MqttProbe::connect(&broker, "biogate", false, &["bg/+/punch"]).await;
        // DISCONNECT keeps the persistent session: the broker queues for it.
        gateway.disconnect().await;

        let device = MqttDevice::connect(&broker, "DEV5", "tok-5", "bg").await;
        device.punch_batch((0..50).map(|i| (i.to_string(), time(i), "CheckIn"))).await;
        for i in 50..60 {
            device.punch(&i.to_string(), &time(i), "BreakOut").await;
        }

        // SIGTERM: the queue is saved; the new process loads it.
        broker.restart();
        gateway.reconnect().await;
        let batch = gateway.next_on("bg/DEV5/punch", WAIT).await.expect("the batch, from the saved queue");
        assert_eq!(punch_users(&batch), numbers(0..50));
        let body = batch.json();
        assert_eq!(body["AuthToken"], "tok-5");
        assert_eq!(
            body["events"][0],
            json!({"type": "punch", "user_id": "0", "log_time": time(0), "punch_type": "CheckIn", "input_type": "Fingerprint"})
        );
        let rest = collect_punches(&mut gateway, "bg/DEV5/punch", 10).await;
        assert_eq!(rest, numbers(50..60));
    }
}
