#![allow(dead_code)]
//! A tiny HTTP/1.1 file server on 127.0.0.1 for download tests: serves a fixed set of
//! (path, body) pairs, answers 404 otherwise, and stops after `max_requests`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

pub struct Server {
    pub base: String,
    pub handle: JoinHandle<usize>,
}

pub fn serve(files: Vec<(String, Vec<u8>)>, max_requests: usize) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut served = 0;
        for stream in listener.incoming().take(max_requests) {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Drain the request headers.
            let mut h = String::new();
            while reader.read_line(&mut h).map(|n| n > 2).unwrap_or(false) {
                h.clear();
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
            match files.iter().find(|(p, _)| *p == path) {
                Some((_, body)) => {
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body));
                    served += 1;
                }
                None => {
                    let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                }
            }
        }
        served
    });
    Server { base, handle }
}

/// The four MNIST files from `dir`, served as `{prefix}NAME.gz`.
pub fn mnist_files(dir: &std::path::Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    latent_explorer::dataset::FILES
        .iter()
        .map(|f| (format!("{prefix}{f}.gz"), std::fs::read(dir.join(format!("{f}.gz"))).unwrap()))
        .collect()
}
