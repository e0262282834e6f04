//! A `nats-server` of the test's own on a free port (JetStream on, storage in a temp dir),
//! stopped when dropped.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct NatsServer {
    child: Child,
    pub port: u16,
    store: tempfile::TempDir,
}

fn spawn(port: u16, store: &Path) -> Child {
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server is installed (scripts/setup.sh test)");
    super::wait_for("nats-server to listen", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    child
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections.
    pub fn start() -> NatsServer {
        let port = super::free_port();
        let store = tempfile::tempdir().unwrap();
        let child = spawn(port, store.path());
        NatsServer { child, port, store }
    }

    /// Stops the server and starts it again on the same port with the same storage.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(self.port, self.store.path());
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
