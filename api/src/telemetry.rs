//! Logging: a `tracing` subscriber writing to the given sink.

use tracing_subscriber::{EnvFilter, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt};

/// Install the global subscriber. `RUST_LOG` overrides `default_filter`.
pub fn init<W>(default_filter: &str, json: bool, sink: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests) keeps the first subscriber; that is fine.
    let _ = if json {
        registry.with(tracing_subscriber::fmt::layer().json().with_writer(sink)).try_init()
    } else {
        registry.with(tracing_subscriber::fmt::layer().with_writer(sink)).try_init()
    };
}
