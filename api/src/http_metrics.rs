//! HTTP requests counted per route, method and status, and their latency per route, method and
//! status class, for `/metrics` (the SLOs in `deploy/prometheus/alerts.yml` read them). The route
//! is the matched template (`/api/v1/workouts/{id}`), never the raw path, so the series stay few;
//! a request no route matched is `unmatched`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use dashmap::DashMap;
use trackwire_ingest::histogram::LatencyHistogram;

use crate::prometheus::PrometheusText;

#[derive(Debug, Default)]
pub struct HttpMetrics {
    requests: DashMap<(Arc<str>, &'static str, u16), AtomicU64>,
    latency: DashMap<(Arc<str>, &'static str, &'static str), LatencyHistogram>,
    /// One shared copy of each route template, so a request allocates no label.
    routes: DashMap<Box<str>, Arc<str>>,
}

/// The matched route, handed from inside the router to the recording layer outside it.
#[derive(Clone)]
struct RouteLabel(MatchedPath);

impl HttpMetrics {
    fn route(&self, template: &str) -> Arc<str> {
        if let Some(interned) = self.routes.get(template) {
            return interned.clone();
        }
        self.routes.entry(template.into()).or_insert_with(|| Arc::from(template)).clone()
    }

    fn observe(&self, route: Arc<str>, method: &'static str, status: u16, started: Instant) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.latency.entry((route.clone(), method, class)).or_default().observe(started.elapsed());
        self.requests.entry((route, method, status)).or_default().fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut PrometheusText) {
        let mut requests: Vec<(String, u64)> = self
            .requests
            .iter()
            .map(|e| {
                let (route, method, status) = e.key();
                (
                    format!("route=\"{route}\",method=\"{method}\",status=\"{status}\""),
                    e.value().load(Ordering::Relaxed),
                )
            })
            .collect();
        requests.sort();
        out.family("trackwire_http_requests_total", "counter", "HTTP requests, by route, method and status.", requests);
        let mut latency: Vec<(String, trackwire_ingest::histogram::HistogramSnapshot)> = self
            .latency
            .iter()
            .map(|e| {
                let (route, method, class) = e.key();
                (format!("route=\"{route}\",method=\"{method}\",status_class=\"{class}\""), e.value().snapshot())
            })
            .collect();
        latency.sort_by(|a, b| a.0.cmp(&b.0));
        out.histogram(
            "trackwire_http_request_duration_seconds",
            "Time from a request's arrival to its response's head, by route, method and status class.",
            latency,
        );
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Inside the router (a route layer): tags the response with the route that matched.
pub async fn label_route(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(RouteLabel(matched));
    }
    response
}

/// Around the router: times every request, fallbacks included, and counts it.
pub async fn record(State(metrics): State<Arc<HttpMetrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let response = next.run(request).await;
    let route = metrics.route(response.extensions().get::<RouteLabel>().map_or("unmatched", |r| r.0.as_str()));
    metrics.observe(route, method, response.status().as_u16(), started);
    response
}
