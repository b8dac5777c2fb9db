// tests/setup.sh decides what to install from what it finds. Each case hides one thing (a tool
// from PATH, the wasm32 target, node_modules, the Debian packages) and checks, in a dry run,
// that setup plans to install exactly that and exits 0. Run by `npm test` after the real setup,
// so with nothing hidden the plan is empty.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync, copyFileSync, chmodSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, delimiter } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("..", import.meta.url));
const lockedBindgen = /name = "wasm-bindgen"\nversion = "([^"]+)"/.exec(
  spawnSync("cat", [join(repo, "Cargo.lock")], { encoding: "utf8" }).stdout,
)[1];

/// A copy of what setup reads (itself and the lock files), with or without node_modules.
function fakeRepo(dir, { nodeModules }) {
  mkdirSync(join(dir, "tests"), { recursive: true });
  for (const f of ["tests/setup.sh", "Cargo.lock", "package.json", "package-lock.json"]) copyFileSync(join(repo, f), join(dir, f));
  if (nodeModules) symlinkSync(join(repo, "node_modules"), join(dir, "node_modules"));
  return dir;
}

/// A folder of links to every program on PATH except `hidden`, plus `fakes` (name -> script).
function shadowPath(dir, hidden, fakes = {}) {
  const bin = join(dir, "bin");
  mkdirSync(bin);
  for (const d of process.env.PATH.split(delimiter)) {
    let names;
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const name of names) {
      if (hidden.includes(name) || name in fakes || existsSync(join(bin, name))) continue;
      try {
        if (statSync(join(d, name)).isFile()) symlinkSync(join(d, name), join(bin, name));
      } catch {
        // a dangling link on PATH: not a program
      }
    }
  }
  for (const [name, body] of Object.entries(fakes)) {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
  return bin;
}

function dryRun({ mode = "test", hide = [], fakes = {}, nodeModules = true, dry = true }) {
  const dir = mkdtempSync(join(tmpdir(), "setup-test-"));
  try {
    fakeRepo(join(dir, "repo"), { nodeModules });
    const PATH = shadowPath(dir, hide, fakes);
    const r = spawnSync("/bin/bash", [join(dir, "repo/tests/setup.sh"), mode], {
      env: { ...process.env, PATH, SETUP_DRY_RUN: dry ? "1" : "0" },
      encoding: "utf8",
    });
    const planned = r.stdout.split("\n").filter((l) => l.startsWith("setup: would run: "));
    return { code: r.status, out: r.stdout + r.stderr, planned };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const rustupWithoutWasm = `if [ "$1 $2 $3" = "target list --installed" ]; then echo x86_64-unknown-linux-gnu; else echo "rustup: unexpected $*" >&2; exit 3; fi`;
const realCargo = spawnSync("/bin/sh", ["-c", "command -v cargo"], { encoding: "utf8" }).stdout.trim();
// A cargo whose toolchain lacks the rustfmt and clippy components.
const cargoWithoutLints = `case "$1" in fmt|clippy) echo "error: no such command: $1" >&2; exit 101;; esac; exec ${realCargo} "$@"`;
const dpkgKnowsNothing = `echo "dpkg-query: no packages found matching $3" >&2; exit 1`;

test("with nothing hidden the plan is empty (npm test installed everything first)", () => {
  const r = dryRun({});
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(r.planned, [], r.out);
});

test("wasm-bindgen hidden: plans cargo install of the locked version", () => {
  const r = dryRun({ hide: ["wasm-bindgen"] });
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(r.planned, [`setup: would run: cargo install -q --force wasm-bindgen-cli --version ${lockedBindgen}`], r.out);
});

// cargo remembers what it installed: with the binary deleted, `cargo install` without --force
// says "already installed" and does nothing. This fake cargo does just that, for real (not a dry
// run): setup must force the install, and when wasm-bindgen still does not answer, say so.
test("an install that leaves no wasm-bindgen on PATH: forced, then a clear error", () => {
  const log = join(mkdtempSync(join(tmpdir(), "setup-cargo-")), "args");
  const cargo = `if [ "$1" = install ]; then echo "$*" > ${log}; exit 0; fi; exec ${realCargo} "$@"`;
  const r = dryRun({ mode: "build", hide: ["wasm-bindgen"], fakes: { cargo }, dry: false });
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /wasm-bindgen \S+ was installed, but `wasm-bindgen --version` does not answer .*put cargo's bin folder/, r.out);
  assert.match(readFileSync(log, "utf8"), /^install -q --force wasm-bindgen-cli --version /);
});

test("a wasm-bindgen of another version: plans the locked one", () => {
  const r = dryRun({ fakes: { "wasm-bindgen": "echo wasm-bindgen 0.2.1" } });
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(r.planned, [`setup: would run: cargo install -q --force wasm-bindgen-cli --version ${lockedBindgen}`], r.out);
});

test("the wasm32 target missing: plans rustup target add", () => {
  const r = dryRun({ fakes: { rustup: rustupWithoutWasm } });
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(r.planned, ["setup: would run: rustup target add wasm32-unknown-unknown"], r.out);
});

test("rustfmt and clippy missing: plans rustup component add, only for tests", () => {
  const r = dryRun({ fakes: { cargo: cargoWithoutLints } });
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(r.planned, ["setup: would run: rustup component add rustfmt", "setup: would run: rustup component add clippy"], r.out);
  assert.deepEqual(dryRun({ mode: "build", fakes: { cargo: cargoWithoutLints } }).planned, []);
});

test("node_modules missing: plans npm ci for tests, nothing for npm start", () => {
  const r = dryRun({ nodeModules: false });
  assert.equal(r.code, 0, r.out);
  assert.equal(r.planned.length, 1, r.out);
  assert.match(r.planned[0], /^setup: would run: npm ci --prefix \S+/);
  const build = dryRun({ mode: "build", nodeModules: false });
  assert.equal(build.code, 0, build.out);
  assert.deepEqual(build.planned, [], build.out);
});

test("chromium hidden: plans apt-get install chromium, only for tests", { skip: process.getuid() !== 0 && "needs root" }, () => {
  const r = dryRun({ hide: ["chromium"] });
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(r.planned, ["setup: would run: apt-get update -qq", "setup: would run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"], r.out);
  assert.deepEqual(dryRun({ mode: "build", hide: ["chromium"] }).planned, []);
});

test("no Debian package installed: plans every one", { skip: process.getuid() !== 0 && "needs root" }, () => {
  const r = dryRun({ hide: ["chromium"], fakes: { "dpkg-query": dpkgKnowsNothing } });
  assert.equal(r.code, 0, r.out);
  assert.equal(r.planned.at(-1), "setup: would run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium mesa-vulkan-drivers libvulkan1 dataset-fashion-mnist fonts-noto-cjk fonts-tlwg-loma-otf", r.out);
});

test("everything missing at once: one plan with every step, exit 0", { skip: process.getuid() !== 0 && "needs root" }, () => {
  const r = dryRun({ hide: ["wasm-bindgen", "chromium"], fakes: { cargo: cargoWithoutLints, rustup: rustupWithoutWasm, "dpkg-query": dpkgKnowsNothing }, nodeModules: false });
  assert.equal(r.code, 0, r.out);
  assert.equal(r.planned.length, 7, r.out);
});

test("without cargo it stops with a clear message", () => {
  const r = dryRun({ hide: ["cargo"] });
  assert.equal(r.code, 1);
  assert.match(r.out, /Rust is required: install it with rustup/);
});
