//! Where the lake lives: a local directory (the embedded default) or an S3 bucket (any
//! S3-compatible server), behind the same `ObjectStore` so the table code never knows which.
//!
//! A location is a root URL and the store its paths resolve in (the whole filesystem for
//! `file://`, the bucket for `s3://`): the Delta log stores every file by its URL, so the data
//! files and the log must agree on one mapping from URL to object, and this is it.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use url::Url;

use crate::SinkError;

/// S3 settings beyond the URL. Unset fields fall back to the standard AWS environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, …).
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint of an S3-compatible server (e.g. `http://127.0.0.1:9000`); None = AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow `http://` endpoints (local servers).
    pub allow_http: bool,
    /// Longest a single request may take before it is retried by the next flush.
    pub request_timeout: Duration,
}

/// The lake's root and the store its URLs resolve in.
#[derive(Clone, Debug)]
pub struct LakeLocation {
    pub store: Arc<dyn ObjectStore>,
    /// Ends with `/`.
    pub root: Url,
}

impl LakeLocation {
    /// The root URL of table `name` (ends with `/`).
    pub fn table_url(&self, name: &str) -> Url {
        self.root.join(&format!("{name}/")).expect("a table name is a valid URL segment")
    }

    /// The object a URL under the root names.
    pub fn object(&self, url: &Url) -> Result<Path, SinkError> {
        Path::from_url_path(url.path()).map_err(|e| SinkError::Config(format!("lake url '{url}' names no object: {e}")))
    }

    /// Whether the table at `table_url` has a Delta log (at least one entry in `_delta_log/`).
    pub async fn has_delta_log(&self, table_url: &Url) -> Result<bool, SinkError> {
        use futures::StreamExt;
        let log = table_url.join("_delta_log/").map_err(|e| SinkError::Config(e.to_string()))?;
        let prefix = self.object(&log)?;
        match self.store.list(Some(&prefix)).next().await {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(source)) => Err(SinkError::ObjectStore { operation: "list", path: prefix.to_string(), source }),
        }
    }

    /// The same root over another store (one that wraps this one's, e.g. to inject faults).
    pub fn with_store(&self, store: Arc<dyn ObjectStore>) -> LakeLocation {
        LakeLocation { store, root: self.root.clone() }
    }
}

/// The lake at a URL: `s3://bucket[/prefix]`, `file:///abs/dir`, or a plain path.
pub fn open_store(url: &str, s3: &S3Options) -> Result<LakeLocation, SinkError> {
    let bad = |detail: String| SinkError::Config(format!("lake url '{url}': {detail}"));
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket: use s3://bucket/prefix".into()));
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            // Few, quick retries here: a longer outage is retried by the sink at each flush, with
            // its lag and last error on /healthcheck, instead of blocking the sink thread.
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(10),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(s3.request_timeout)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_allow_http(s3.allow_http),
            );
        if let Some(endpoint) = &s3.endpoint {
            builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
        }
        if let Some(region) = &s3.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &s3.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &s3.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder.build().map_err(|e| bad(e.to_string()))?;
        let prefix = prefix.trim_matches('/');
        let root = if prefix.is_empty() { format!("s3://{bucket}/") } else { format!("s3://{bucket}/{prefix}/") };
        let root = Url::parse(&root).map_err(|e| bad(e.to_string()))?;
        return Ok(LakeLocation { store: Arc::new(store), root });
    }
    let dir = url.strip_prefix("file://").unwrap_or(url);
    if dir.contains("://") {
        return Err(bad("unsupported scheme: use s3://bucket/prefix or a directory".into()));
    }
    super::local_store(std::path::Path::new(dir))
}
