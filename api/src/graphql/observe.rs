//! Which kind of operation a request ran (`query`, `mutation`, `subscription`), for metrics.
//! Over HTTP the transport records the request (it knows the latency and the status); the
//! operation kind is handed back through [`OperationKind`] in the request data. Over WebSocket
//! this extension records each operation itself, when it starts.

use std::{
    pin::Pin,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context as TaskContext, Poll},
    time::Instant,
};

use async_graphql::{
    Request, Response, ServerResult, ValidationResult, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextSubscribe,
        NextValidation,
    },
    futures_util::stream::BoxStream,
    parser::types::{ExecutableDocument, OperationType},
};
use futures_util::{Stream, StreamExt};

use crate::{metrics::Metrics, state::AppState};

/// Set by the extension once the document is parsed; read by the HTTP layer after execution.
#[derive(Debug, Default)]
pub struct OperationKind(OnceLock<&'static str>);

impl OperationKind {
    /// `query`, `mutation`, `subscription`, or `unknown` when the document did not parse or
    /// named no operation it holds.
    pub fn get(&self) -> &'static str {
        self.0.get().copied().unwrap_or("unknown")
    }
}

fn kind_of(document: &ExecutableDocument, operation_name: Option<&str>) -> Option<&'static str> {
    let (_, operation) = document.operations.iter().find(|(name, _)| match operation_name {
        Some(wanted) => name.is_some_and(|n| n.as_str() == wanted),
        None => true,
    })?;
    Some(match operation.node.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    })
}

pub struct Observe;

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObserveExtension { state: Arc::default() })
    }
}

/// What one request (or one WebSocket operation) has shown so far.
#[derive(Default)]
struct Seen {
    operation_name: Mutex<Option<String>>,
    kind: OnceLock<&'static str>,
    invalid: AtomicBool,
}

struct ObserveExtension {
    state: Arc<Seen>,
}

#[async_trait::async_trait]
impl Extension for ObserveExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Ok(mut name) = self.state.operation_name.lock() {
            name.clone_from(&request.operation_name);
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let parsed = next.run(ctx, query, variables).await;
        match &parsed {
            Ok(document) => {
                let name = self.state.operation_name.lock().ok().and_then(|n| n.clone());
                if let Some(kind) = kind_of(document, name.as_deref()) {
                    let _ = self.state.kind.set(kind);
                    if let Some(shared) = ctx.data_opt::<Arc<OperationKind>>() {
                        let _ = shared.0.set(kind);
                    }
                }
            }
            Err(_) => self.state.invalid.store(true, Ordering::Relaxed),
        }
        parsed
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<async_graphql::ServerError>> {
        let result = next.run(ctx).await;
        if result.is_err() {
            self.state.invalid.store(true, Ordering::Relaxed);
        }
        result
    }

    /// Only the WebSocket transport streams; record each operation when it starts.
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let stream = next.run(ctx, stream);
        match ctx.data_opt::<AppState>() {
            Some(state) => Recorder {
                inner: stream,
                seen: self.state.clone(),
                metrics: state.metrics.clone(),
                started: Instant::now(),
                done: false,
            }
            .boxed(),
            None => stream,
        }
    }
}

/// Records a streamed operation once: a subscription when it is established (or refused), a
/// query or mutation when its answer arrives.
struct Recorder<'s> {
    inner: BoxStream<'s, Response>,
    seen: Arc<Seen>,
    metrics: Arc<Metrics>,
    started: Instant,
    done: bool,
}

impl Recorder<'_> {
    fn outcome(&self, response: Option<&Response>) -> &'static str {
        match response {
            _ if self.seen.invalid.load(Ordering::Relaxed) => "request_error",
            Some(response) if response.is_err() => "field_error",
            _ => "ok",
        }
    }

    fn record(&mut self, response: Option<&Response>) {
        self.done = true;
        let outcome = self.outcome(response);
        match self.seen.kind.get().copied() {
            Some("subscription") => self.metrics.record_subscription(outcome),
            Some(kind) => self.metrics.record_request(kind, outcome, self.started.elapsed()),
            None => self.metrics.record_request("unknown", outcome, self.started.elapsed()),
        }
    }
}

impl Stream for Recorder<'_> {
    type Item = Response;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Response>> {
        let polled = self.inner.poll_next_unpin(cx);
        if !self.done {
            match &polled {
                Poll::Ready(item) => self.record(item.as_ref()),
                // A valid subscription waiting for its first event is established.
                Poll::Pending
                    if self.seen.kind.get() == Some(&"subscription") && !self.seen.invalid.load(Ordering::Relaxed) =>
                {
                    self.record(None)
                }
                Poll::Pending => {}
            }
        }
        polled
    }
}
