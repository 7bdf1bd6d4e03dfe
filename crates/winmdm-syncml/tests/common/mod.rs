//! A harness driving a [`Session`] against the simulated [`Device`], the way a vendor's
//! HTTP handler would: receive → authenticate (digest) → drain events, resolve user
//! tokens, queue → reply. Optionally round-trips the stored state through JSON before
//! every message (as if each request hit another server instance).
#![allow(dead_code, unreachable_pub)]

use winmdm_syncml::auth::Nonce;
use winmdm_syncml::client::Device;
use winmdm_syncml::scope::{EnrollmentType, SessionUser};
use winmdm_syncml::session::{
    Authenticated, Event, Inbound, QueuedCommand, Reply, Session, SessionConfig, SessionEnd,
    SessionState, Verdict,
};
use winmdm_syncml::{SyncMl, decode, encode};

pub const SERVER: &str = "https://mdm.contoso.example/ManagementServer/MDM.svc";
pub const DEVICE: &str = "{6F1A1B2C-3D4E-5F60-7182-93A4B5C6D7E8}";
pub const USER: &str = "6F1A1B2C3D4E5F60718293A4B5C6D7E8";
pub const PASS: &str = "device-secret-from-provisioning";

pub fn nonce(n: u8) -> Nonce {
    Nonce::from_bytes(vec![n; 16])
}

pub fn device() -> Device {
    Device::new(DEVICE, SERVER).with_digest(USER, PASS, nonce(1))
}

/// Validates an AADUserToken into the session's user.
pub type Resolver = Box<dyn Fn(&str) -> Option<SessionUser>>;

pub struct Harness {
    pub session: Session,
    pub device: Device,
    pub now: u64,
    pub events: Vec<Event>,
    pub server_msgs: Vec<SyncMl>,
    pub client_msgs: Vec<SyncMl>,
    pub replies: Vec<Reply>,
    /// Validates an AADUserToken (the vendor would call winmdm-entra).
    pub resolve: Resolver,
    /// Round-trip the state through JSON before each message.
    pub persist: bool,
    /// Commands to queue during the first exchange (after the events).
    pub queue_in_first: Vec<QueuedCommand>,
    nonce_counter: u8,
}

impl Harness {
    pub fn new(enrollment: EnrollmentType, device: Device) -> Self {
        Self::with_config(SessionConfig::new(enrollment), device)
    }

    pub fn with_config(config: SessionConfig, device: Device) -> Self {
        Self {
            session: Session::new(config, nonce(1)),
            device,
            now: 1_780_000_000,
            events: Vec::new(),
            server_msgs: Vec::new(),
            client_msgs: Vec::new(),
            replies: Vec::new(),
            resolve: Box::new(|_| None),
            persist: false,
            queue_in_first: Vec::new(),
            nonce_counter: 100,
        }
    }

    pub fn queue(&mut self, tag: &str, command: winmdm_syncml::Command) {
        self.session
            .queue(QueuedCommand::new(tag, command))
            .unwrap();
    }

    fn restore_roundtrip(&mut self) {
        let json = serde_json::to_string(self.session.state()).unwrap();
        let state: SessionState = serde_json::from_str(&json).unwrap();
        assert_eq!(&state, self.session.state(), "state changed through JSON");
        self.session = Session::restore(state).unwrap();
    }

    /// One HTTP request: the client message in, the reply out (through the wire format
    /// both ways).
    pub fn exchange(&mut self, msg: SyncMl) -> Reply {
        let wire = encode(&msg);
        let msg = decode(wire.as_bytes()).unwrap();
        self.client_msgs.push(msg.clone());
        if self.persist {
            self.restore_roundtrip();
        }
        self.nonce_counter = self.nonce_counter.wrapping_add(1);
        let fresh = nonce(self.nonce_counter);
        // The request's URL (a vendor reads it from HTTP; here the message's Target, which
        // the client sets to where it sends): a message that arrived on the session's bound
        // RespURI, without credentials, continues the session.
        let bound = self.session.state().resp_uri().is_some_and(|r| {
            msg.header
                .target
                .as_ref()
                .is_some_and(|t| t.loc_uri.trim() == r)
        });
        let verdict = if bound && msg.header.cred.is_none() {
            Verdict::Continue
        } else {
            Verdict::Digest {
                username: USER,
                password: PASS,
            }
        };
        let reply = match self.session.receive(msg, self.now).unwrap() {
            Inbound::Authenticate(step) => {
                assert_eq!(step.claim().device_id, DEVICE);
                match step.decide(verdict, fresh) {
                    Authenticated::Yes(mut ex) => {
                        if ex.state().resp_uri().is_none() {
                            ex.bind(format!("{SERVER}?s=bound-{}", self.nonce_counter));
                        }
                        while let Some(e) = ex.poll_event() {
                            if let Event::UserToken(t) = &e {
                                let user = (self.resolve)(t.expose());
                                ex.set_user(user);
                            }
                            self.events.push(e);
                        }
                        for q in self.queue_in_first.drain(..) {
                            ex.queue(q).unwrap();
                        }
                        ex.reply()
                    }
                    Authenticated::Challenged(r)
                    | Authenticated::Refused(r)
                    | Authenticated::Repeat(r) => r,
                }
            }
            Inbound::Expired(r) => r,
        };
        let xml = reply.to_xml();
        assert!(
            xml.len() as u64 <= self.session.state().max_msg_size(),
            "reply of {} bytes exceeds MaxMsgSize {}",
            xml.len(),
            self.session.state().max_msg_size()
        );
        assert_eq!(decode(xml.as_bytes()).unwrap(), reply.message);
        self.server_msgs.push(reply.message.clone());
        self.replies.push(reply.clone());
        self.now += 1;
        reply
    }

    /// Runs a whole session from the device's first package; returns how it ended.
    pub fn run(&mut self) -> SessionEnd {
        let mut msg = self.device.start_session();
        for _ in 0..2000 {
            let reply = self.exchange(msg);
            let next = self.device.respond(&reply.message);
            if let Some(end) = reply.end {
                assert!(
                    next.is_none(),
                    "the device kept talking after the session ended"
                );
                return end;
            }
            msg = next.expect("the device stopped while the server expects more");
        }
        panic!(
            "the session did not end in 2000 messages:\n{}",
            self.trace(12)
        );
    }

    /// The first `n` exchanges, summarized.
    pub fn trace(&self, n: usize) -> String {
        let mut trace = String::new();
        for (c, s) in self.client_msgs.iter().zip(&self.server_msgs).take(n) {
            trace.push_str(&format!("C: {}\nS: {}\n", summary(c), summary(s)));
        }
        trace
    }

    pub fn statuses(&self, tag: &str) -> Vec<(Vec<u32>, u16)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Status {
                    tag: t,
                    path,
                    status,
                } if t == tag => Some((path.clone(), status.code.map_or(0, |c| c.0))),
                _ => None,
            })
            .collect()
    }

    /// Every server command (top level) named `name` targeting `uri`, over the session.
    pub fn sent_to(&self, uri: &str) -> usize {
        self.server_msgs
            .iter()
            .flat_map(|m| &m.body.commands)
            .filter(|c| {
                fn hits(c: &winmdm_syncml::Command, uri: &str) -> bool {
                    c.items()
                        .iter()
                        .any(|i| i.target.as_ref().is_some_and(|t| t.loc_uri == uri))
                        || c.children().iter().any(|k| hits(k, uri))
                }
                hits(c, uri)
            })
            .count()
    }
}

/// A one-line summary of a message (for failure traces).
pub fn summary(m: &SyncMl) -> String {
    let mut out = format!("#{} ", m.header.msg_id);
    for c in &m.body.commands {
        match c {
            winmdm_syncml::Command::Status(s) => out.push_str(&format!(
                "St({}/{} {} {}) ",
                s.msg_ref.as_deref().unwrap_or("-"),
                s.cmd_ref.as_deref().unwrap_or("-"),
                s.cmd.as_deref().unwrap_or("-"),
                s.data
            )),
            winmdm_syncml::Command::Alert(a) => {
                out.push_str(&format!("Alert({}) ", a.data.as_deref().unwrap_or("-")))
            }
            other => out.push_str(&format!(
                "{}({}{}) ",
                other.name(),
                other.cmd_id().map_or("-", |i| i.as_str()),
                if other.items().iter().any(|i| i.more_data) {
                    " more"
                } else {
                    ""
                }
            )),
        }
    }
    if m.body.is_final {
        out.push_str("Final");
    }
    out
}
