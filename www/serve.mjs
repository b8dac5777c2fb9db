// `npm start`: serves www/ on http://localhost:8080 (PORT overrides) with the right MIME types.
// Also imported by the browser tests, which serve on a free port.
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));
const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".safetensors": "application/octet-stream",
};

/** Starts the server; resolves to it once listening (port 0 picks a free port). */
export function serve(port = 0, host = "127.0.0.1") {
  const server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url, "http://localhost").pathname);
      let file = normalize(join(root, path));
      if (!file.startsWith(root.endsWith(sep) ? root : root + sep) && file + sep !== root) {
        res.writeHead(403).end("forbidden");
        return;
      }
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      const body = await readFile(file);
      res.writeHead(200, { "Content-Type": types[extname(file)] || "application/octet-stream", "Cache-Control": "no-cache" });
      res.end(body);
    } catch {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found");
    }
  });
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.env.PORT || 8080);
  serve(port, "localhost").then(() => console.log(`latent-explorer: http://localhost:${port}/`));
}
