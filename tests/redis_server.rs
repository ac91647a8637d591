//! Redis for tests: the one named by `TEST_REDIS_URL`, or a `redis-server` the test starts (and
//! may stop and restart) on a free port of its own. Tests that need Redis and find neither print
//! a notice and skip.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::process::{Child, Command};

/// A `redis-server` child process on its own port, without persistence.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

/// Whether `redis-server` can be run here.
pub async fn redis_server_installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

impl RedisServer {
    /// Start a server, or `None` (with a notice) when `redis-server` is not installed.
    pub async fn start(test: &str) -> Option<Self> {
        if !redis_server_installed().await {
            println!("SKIPPED {test}: redis-server is not installed");
            return None;
        }
        let mut server = RedisServer { port: free_port(), child: None };
        server.restart().await;
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port and wait until it answers.
    pub async fn restart(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        wait_until_answers(&self.url()).await;
    }

    /// Kill the server (as a crash would) and wait until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// Poll with `PING` until Redis answers (10 s at most).
pub async fn wait_until_answers(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let client = redis::Client::open(url).expect("redis url");
    loop {
        if let Ok(Ok(mut conn)) =
            tokio::time::timeout(Duration::from_millis(500), client.get_multiplexed_async_connection()).await
            && redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
        {
            return;
        }
        assert!(Instant::now() < deadline, "redis at {url} did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Redis two instances can share: `TEST_REDIS_URL`, else one started for the test.
pub struct SharedRedis {
    pub url: String,
    _server: Option<RedisServer>,
}

impl SharedRedis {
    /// `None` (with a notice) when there is no `TEST_REDIS_URL` and no `redis-server`.
    pub async fn get(test: &str) -> Option<Self> {
        if let Some(url) = std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.trim().is_empty()) {
            return Some(Self { url, _server: None });
        }
        let server = RedisServer::start(test).await?;
        Some(Self { url: server.url(), _server: Some(server) })
    }
}
