// How the browser tests and the benchmark start Debian's Chromium.
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
// With these alone, Chromium has navigator.gpu but its requestAdapter() resolves to null.
export const BASE_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
// WebGPU on SwiftShader. The compositor must run on SwiftShader Vulkan too: with the default
// (GL) compositor, presenting a WebGPU canvas loses the device ("A valid external Instance
// reference no longer exists"); see visgl/luma.gl#2874.
export const WEBGPU_ARGS = ["--enable-unsafe-webgpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", "--enable-gpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader"];
