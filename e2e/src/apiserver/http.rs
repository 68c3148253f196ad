//! The HTTP front end of the test API server: legacy discovery, CRUD on
//! built-in resources and registered CRDs, merge patches, and watches
//! (newline-delimited JSON events with bookmarks, `410 Gone` as an ERROR
//! event for versions older than the store keeps).

use super::audit::{self, AuditEntry};
use super::resources::{builtin_resources, resource_from_crd};
use super::selector::Selector;
use super::store::{Resource, Store, StoreError};
use super::table;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub struct ServerState {
    pub store: Store,
    pub resources: Vec<Resource>,
    /// `additionalPrinterColumns` of each CRD version, by (group, plural).
    pub printer_columns: HashMap<(String, String), Vec<Value>>,
    /// Every resource request, by user.
    pub audit: Vec<AuditEntry>,
}

#[derive(Clone)]
pub struct Shared {
    state: Arc<Mutex<ServerState>>,
    /// Bumped after every change, to wake watches.
    changed: watch::Sender<u64>,
}

impl ServerState {
    fn columns(&self, r: &Resource) -> Vec<Value> {
        self.printer_columns
            .get(&(r.group.clone(), r.plural.clone()))
            .cloned()
            .unwrap_or_default()
    }
}

fn accept(headers: &HeaderMap) -> Option<&str> {
    headers.get("accept").and_then(|v| v.to_str().ok())
}

impl Shared {
    pub fn new() -> Self {
        Shared {
            state: Arc::new(Mutex::new(ServerState {
                store: Store::default(),
                resources: builtin_resources(),
                printer_columns: HashMap::new(),
                audit: Vec::new(),
            })),
            changed: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The resource requests made as `user` so far.
    pub fn requests_of(&self, user: &str) -> Vec<AuditEntry> {
        let state = self.lock();
        state
            .audit
            .iter()
            .filter(|e| e.user == user)
            .cloned()
            .collect()
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/api", get(api_versions))
        .route("/apis", get(api_groups))
        .route(
            "/api/v1",
            get(|s| resource_list(s, String::new(), "v1".into())),
        )
        .route("/apis/{group}/{version}", get(group_resources))
        .route("/api/v1/{*rest}", axum::routing::any(core_request))
        .route(
            "/apis/{group}/{version}/{*rest}",
            axum::routing::any(group_request),
        )
        .route(
            "/version",
            get(|| async {
                axum::Json(
                    json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-alluxio-test"}),
                )
            }),
        )
        .with_state(shared)
}

/// A failed request, answered with a `Status` object.
struct ApiError {
    code: StatusCode,
    reason: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        status_error(self.code, self.reason, self.message)
    }
}

fn status_error(code: StatusCode, reason: &str, message: String) -> Response {
    (
        code,
        axum::Json(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
        })),
    )
        .into_response()
}

fn store_error(e: StoreError) -> Response {
    let (code, reason) = match &e {
        StoreError::NotFound { .. } => (StatusCode::NOT_FOUND, "NotFound"),
        StoreError::AlreadyExists { .. } => (StatusCode::CONFLICT, "AlreadyExists"),
        StoreError::Conflict { .. } => (StatusCode::CONFLICT, "Conflict"),
        StoreError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        StoreError::Gone { .. } => (StatusCode::GONE, "Expired"),
    };
    status_error(code, reason, e.to_string())
}

async fn api_versions() -> impl IntoResponse {
    axum::Json(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}))
}

async fn api_groups(State(s): State<Shared>) -> impl IntoResponse {
    let state = s.lock();
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for r in state.resources.iter().filter(|r| !r.group.is_empty()) {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => {
                versions.push(r.version.clone())
            }
            Some(_) => {}
            None => groups.push((r.group.clone(), vec![r.version.clone()])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": vs, "preferredVersion": vs[0]})
        })
        .collect();
    axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
}

async fn group_resources(
    State(s): State<Shared>,
    Path((group, version)): Path<(String, String)>,
) -> Response {
    resource_list(State(s), group, version).await
}

async fn resource_list(State(s): State<Shared>, group: String, version: String) -> Response {
    let state = s.lock();
    let resources: Vec<Value> = state
        .resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .flat_map(|r| {
            let verbs = json!(["create", "delete", "get", "list", "patch", "update", "watch"]);
            let mut out = vec![json!({
                "name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced,
                "kind": r.kind, "verbs": verbs, "shortNames": r.short_names,
            })];
            if r.status_subresource {
                out.push(json!({"name": format!("{}/status", r.plural), "singularName": "",
                    "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
            }
            out
        })
        .collect();
    if resources.is_empty() {
        return status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{group}/{version} is not served"),
        );
    }
    let gv = if group.is_empty() {
        version
    } else {
        format!("{group}/{version}")
    };
    axum::Json(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
        .into_response()
}

/// What a request path names.
struct Target {
    resource: Resource,
    namespace: String,
    name: Option<String>,
    status: bool,
}

fn parse_target(
    state: &ServerState,
    group: &str,
    version: &str,
    rest: &str,
) -> Result<Target, ApiError> {
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let find = |plural: &str| {
        state
            .resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
            .ok_or_else(|| ApiError {
                code: StatusCode::NOT_FOUND,
                reason: "NotFound",
                message: format!("the server could not find the requested resource ({plural})"),
            })
    };
    let t = |resource, namespace: &str, name: Option<&str>, status| Target {
        resource,
        namespace: namespace.to_string(),
        name: name.map(str::to_string),
        status,
    };
    Ok(match parts.as_slice() {
        ["namespaces", ns, plural] => t(find(plural)?, ns, None, false),
        ["namespaces", ns, plural, name] => t(find(plural)?, ns, Some(name), false),
        ["namespaces", ns, plural, name, "status"] => t(find(plural)?, ns, Some(name), true),
        [plural] => t(find(plural)?, "", None, false),
        [plural, name] => t(find(plural)?, "", Some(name), false),
        [plural, name, "status"] => t(find(plural)?, "", Some(name), true),
        _ => {
            return Err(ApiError {
                code: StatusCode::NOT_FOUND,
                reason: "NotFound",
                message: format!("no route for {rest}"),
            })
        }
    })
}

async fn core_request(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Path(rest): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    handle(
        s,
        method,
        headers,
        String::new(),
        "v1".into(),
        rest,
        q,
        body,
    )
    .await
}

async fn group_request(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Path((group, version, rest)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    handle(s, method, headers, group, version, rest, q, body).await
}

fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    // Protobuf only for the kinds `protobuf` decodes; CBOR is answered as a
    // real server answers a media type it does not serve (client-go then
    // falls back to JSON).
    let unsupported = |message: String| ApiError {
        code: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        reason: "UnsupportedMediaType",
        message,
    };
    if content_type.contains("protobuf") {
        return super::protobuf::decode(body).map_err(unsupported);
    }
    if content_type.contains("cbor") {
        return Err(unsupported(format!(
            "the body's media type {content_type} is not served here; send JSON or YAML"
        )));
    }
    let yaml = content_type.contains("yaml");
    let parsed = if yaml {
        serde_yaml::from_slice::<Value>(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| ApiError {
        code: StatusCode::BAD_REQUEST,
        reason: "BadRequest",
        message: format!("invalid body: {e}"),
    })
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    s: Shared,
    method: Method,
    headers: HeaderMap,
    group: String,
    version: String,
    rest: String,
    q: HashMap<String, String>,
    body: Bytes,
) -> Response {
    let watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let target = {
        let mut state = s.lock();
        let target = match parse_target(&state, &group, &version, &rest) {
            Ok(t) => t,
            Err(e) => return e.into_response(),
        };
        // The impersonated user, else the service account whose token a
        // pod presents (tokens here are the account's user name, not a
        // signed JWT), else the admin the tests' own clients are.
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| t.starts_with("system:serviceaccount:"));
        let user = headers
            .get("impersonate-user")
            .and_then(|v| v.to_str().ok())
            .or(bearer)
            .unwrap_or("admin");
        let suffix = if target.status { "/status" } else { "" };
        state.audit.push(AuditEntry {
            user: user.to_string(),
            verb: audit::verb(&method, target.name.is_some(), watch),
            group: group.clone(),
            resource: format!("{}{suffix}", target.resource.plural),
            namespace: target.namespace.clone(),
        });
        target
    };
    let selector = match Selector::parse(q.get("labelSelector").map_or("", String::as_str))
        .and_then(|s| s.with_fields(q.get("fieldSelector").map_or("", String::as_str)))
    {
        Ok(sel) => sel,
        Err(e) => return status_error(StatusCode::BAD_REQUEST, "BadRequest", e),
    };
    let r = target.resource.clone();
    let ns = target.namespace.clone();
    let result = match (&method, &target.name) {
        (&Method::GET, None) if watch => {
            let as_table = table::wants_table(accept(&headers));
            return watch_stream(s, target, selector, q, as_table).await;
        }
        (&Method::GET, None) => {
            let state = s.lock();
            let namespace = (!ns.is_empty()).then_some(ns.as_str());
            let (items, rv) = state.store.list(&r, namespace, &selector);
            if table::wants_table(accept(&headers)) {
                let columns = state.columns(&r);
                return axum::Json(table::table(&items, &columns, rv)).into_response();
            }
            return axum::Json(json!({
                "kind": format!("{}List", r.kind), "apiVersion": r.api_version(),
                "metadata": {"resourceVersion": rv.to_string()}, "items": items,
            }))
            .into_response();
        }
        (&Method::GET, Some(name)) => {
            let state = s.lock();
            let found = state.store.get(&r, &ns, name);
            if let (Ok(o), true) = (&found, table::wants_table(accept(&headers))) {
                let rv = state.store.resource_version();
                return axum::Json(table::table(
                    std::slice::from_ref(o),
                    &state.columns(&r),
                    rv,
                ))
                .into_response();
            }
            found
        }
        (&Method::POST, None) => {
            let object = match parse_body(&headers, &body) {
                Ok(o) => o,
                Err(e) => return e.into_response(),
            };
            let mut state = s.lock();
            let created = state.store.create(&r, &ns, object);
            if let (Ok(crd), true) = (&created, r.plural == "customresourcedefinitions") {
                register_crd(&mut state, crd);
            }
            drop(state);
            s.changed.send_modify(|v| *v += 1);
            return match created {
                Ok(o) => return_with(StatusCode::CREATED, o),
                Err(e) => store_error(e),
            };
        }
        (&Method::PUT, Some(name)) => match parse_body(&headers, &body) {
            Ok(o) => s.lock().store.update(&r, &ns, name, o, target.status),
            Err(e) => return e.into_response(),
        },
        (&Method::PATCH, Some(name)) => {
            let patch = match parse_body(&headers, &body) {
                Ok(o) => o,
                Err(e) => return e.into_response(),
            };
            let content = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let mut state = s.lock();
            if content.contains("apply-patch") && state.store.get(&r, &ns, name).is_err() {
                // Server-side apply of a new object creates it (Helm 4
                // creates its CRDs so).
                let created = state.store.create(&r, &ns, patch);
                if let (Ok(crd), true) = (&created, r.plural == "customresourcedefinitions") {
                    register_crd(&mut state, crd);
                }
                created
            } else if content.contains("json-patch") {
                state.store.json_patch(&r, &ns, name, &patch, target.status)
            } else {
                state.store.patch(&r, &ns, name, &patch, target.status)
            }
        }
        (&Method::DELETE, Some(name)) => s.lock().store.delete(&r, &ns, name),
        _ => {
            return status_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("{method} is not supported on {rest}"),
            )
        }
    };
    if method != Method::GET {
        s.changed.send_modify(|v| *v += 1);
    }
    match result {
        Ok(o) => return_with(StatusCode::OK, o),
        Err(e) => store_error(e),
    }
}

fn return_with(code: StatusCode, o: Value) -> Response {
    (code, axum::Json(o)).into_response()
}

/// Serves a new CRD's resources and marks it Established, as the real
/// server does once it accepted the names.
fn register_crd(state: &mut ServerState, crd: &Value) {
    for r in resource_from_crd(crd) {
        if !state
            .resources
            .iter()
            .any(|e| e.group == r.group && e.version == r.version && e.plural == r.plural)
        {
            state.resources.push(r);
        }
    }
    let spec = &crd["spec"];
    if let Some(schema) = spec["versions"]
        .as_array()
        .and_then(|v| v.first())
        .map(|v| v["schema"]["openAPIV3Schema"].clone())
        .filter(|s| s.is_object())
    {
        state.store.set_schema(
            spec["group"].as_str().unwrap_or_default(),
            spec["names"]["plural"].as_str().unwrap_or_default(),
            schema,
        );
    }
    if let Some(columns) = spec["versions"]
        .as_array()
        .and_then(|v| v.first())
        .and_then(|v| v["additionalPrinterColumns"].as_array())
    {
        let key = (
            spec["group"].as_str().unwrap_or_default().to_string(),
            spec["names"]["plural"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        state.printer_columns.insert(key, columns.clone());
    }
    let Some(crd_resource) = state
        .resources
        .iter()
        .find(|r| r.plural == "customresourcedefinitions")
        .cloned()
    else {
        return;
    };
    let name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let now = super::store::now_rfc3339();
    let condition = |t: &str| json!({"type": t, "status": "True", "reason": t, "message": "", "lastTransitionTime": now});
    let status = json!({"status": {
        "conditions": [condition("NamesAccepted"), condition("Established")],
        "acceptedNames": crd["spec"]["names"].clone(),
        "storedVersions": crd["spec"]["versions"].as_array().map(|v| v.iter().map(|x| x["name"].clone()).collect::<Vec<_>>()).unwrap_or_default(),
    }});
    let _ = state.store.patch(&crd_resource, "", &name, &status, true);
}

async fn watch_stream(
    s: Shared,
    target: Target,
    selector: Selector,
    q: HashMap<String, String>,
    as_table: bool,
) -> Response {
    let r = target.resource.clone();
    // `kubectl get -w`: every event's object is a one-row Table, the first
    // with the column definitions (as the real server sends them).
    let columns = as_table.then(|| s.lock().columns(&r));
    let mut headers_sent = false;
    let mut shown = move |o: Value, rv: u64| match &columns {
        None => o,
        Some(columns) => {
            let mut t = table::table(std::slice::from_ref(&o), columns, rv);
            if std::mem::replace(&mut headers_sent, true) {
                t["columnDefinitions"] = json!([]);
            }
            t
        }
    };
    let namespace = (!target.namespace.is_empty()).then_some(target.namespace.clone());
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(300), Duration::from_secs);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let line = |v: Value| Ok(Bytes::from(format!("{v}\n")));
    let start = q
        .get("resourceVersion")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    // Streaming lists (kubectl 1.35's default): the current objects, then
    // a bookmark that marks the end of the initial events.
    let initial_events = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    let mut changed = s.changed.subscribe();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        // From "0" or nothing: the current objects first, as ADDED.
        let mut since = start;
        if start == 0 || initial_events {
            let (items, rv) = {
                let state = s.lock();
                state.store.list(&r, namespace.as_deref(), &selector)
            };
            for o in items {
                if tx
                    .send(line(json!({"type": "ADDED", "object": shown(o, rv)})))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            since = rv;
            if initial_events {
                let end = json!({"type": "BOOKMARK", "object": {"kind": r.kind, "apiVersion": r.api_version(),
                    "metadata": {"resourceVersion": rv.to_string(),
                        "annotations": {"k8s.io/initial-events-end": "true"}}}});
                if tx.send(line(end)).await.is_err() {
                    return;
                }
            }
        }
        loop {
            let events = {
                let state = s.lock();
                state.store.events_since(&r, namespace.as_deref(), since)
            };
            match events {
                Err(e) => {
                    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure", "message": e.to_string(), "reason": "Expired", "code": 410});
                    let _ = tx
                        .send(line(json!({"type": "ERROR", "object": status})))
                        .await;
                    return;
                }
                Ok(events) => {
                    for e in events {
                        since = e.resource_version;
                        if selector.matches(&e.object)
                            && tx
                                .send(line(json!({"type": e.kind.as_str(),
                                    "object": shown(e.object, e.resource_version)})))
                                .await
                                .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            let tick = tokio::time::sleep(Duration::from_secs(1));
            tokio::select! {
                _ = changed.changed() => {}
                _ = tick => {
                    if bookmarks {
                        let rv = s.lock().store.resource_version();
                        let mark = json!({"type": "BOOKMARK", "object": {"kind": r.kind, "apiVersion": r.api_version(),
                            "metadata": {"resourceVersion": rv.to_string()}}});
                        if tx.send(line(mark)).await.is_err() {
                            return;
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
